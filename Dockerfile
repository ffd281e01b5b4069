# syntax=docker/dockerfile:1
# The one image every mews service runs from: `mews ingest api`, `mews scoring run`, `mews notify run`, ...
# Build: docker build -t mews:$(git describe --tags --always) .
# Health: Kubernetes probes GET /healthz (liveness) and /readyz (readiness) on the service's port
# (8001 ingest, 8002 scoring, 8003 notify); see deploy/k8s. The HEALTHCHECK below serves plain Docker.

# Pinned by version; pin by digest too (python:3.11-slim@sha256:...) where the registry policy asks for it.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# A C toolchain for any wheel missing for this platform (rocksdict, psycopg have wheels; kept for safety).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/mews
ENV PATH=/opt/mews/bin:$PATH
WORKDIR /src
# Locked runtime dependencies first (no test tools): this layer is rebuilt only when the lock changes.
# rocksdict in it backs the scoring tables on disk (MEWS_SCORING_STORE=rocksdb://).
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# The reference tables (governance, world production, EU study) must be in the package: scoring reads them.
RUN pip install --no-deps . && python -c "import services.cli, shared.events" \
 && cd / && python -c "from services.scoring.refdata.tables import load_reference_data; load_reference_data()"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mews" \
      org.opencontainers.image.description="Materials Early Warning Service" \
      org.opencontainers.image.licenses="EUPL-1.2"
ENV PATH=/opt/mews/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    MEWS_ENVIRONMENT=production MEWS_LOG_JSON=true
RUN groupadd --system --gid 10001 mews \
 && useradd --system --uid 10001 --gid mews --home-dir /var/lib/mews --shell /usr/sbin/nologin mews \
 && mkdir -p /var/lib/mews /etc/mews && chown mews:mews /var/lib/mews
COPY --from=build /opt/mews /opt/mews
WORKDIR /var/lib/mews
USER 10001:10001
EXPOSE 8001 8002 8003
# Each service listens on its own port; the check asks whichever one this container serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os, sys, urllib.request; p = os.environ.get('MEWS_HEALTH_PORT', '8001'); urllib.request.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4); sys.exit(0)"
ENTRYPOINT ["mews"]
CMD ["--help"]
