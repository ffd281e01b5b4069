"""The Strimzi KafkaTopics and the other generated copies under deploy/k8s match their one source."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import yaml

from deploy.k8s import generate_topics
from shared import topics
from tests.ops.conftest import DEPLOY, ROOT

TOPICS_FILE = DEPLOY / "k8s" / "base" / "kafka" / "topics.yaml"


def test_topics_file_is_what_the_declaration_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "k8s" / "generate_topics.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_every_declared_topic_has_a_kafkatopic_with_its_partitions_and_config() -> None:
    resources = {doc["spec"]["topicName"]: doc for doc in yaml.safe_load_all(TOPICS_FILE.read_text()) if doc}
    assert set(resources) == {t.name for t in topics.ALL}
    for topic in topics.ALL:
        spec = resources[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions
        assert spec["config"] == topic.config()
        assert resources[topic.name]["metadata"]["labels"]["strimzi.io/cluster"] == "mews"


def test_a_changed_declaration_is_detected_as_drift() -> None:
    changed = tuple(
        dataclasses.replace(t, partitions=t.partitions + 1) if t is topics.PRICES else t for t in topics.ALL
    )
    assert generate_topics.render(changed) != TOPICS_FILE.read_text()
    added = (*topics.ALL, topics.Topic("mews.extra.v1", 3, 1000))
    assert "topicName: mews.extra.v1" in generate_topics.render(added)


def test_prometheusrule_and_scoring_config_copies_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "k8s" / "generate_copies.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_prometheusrule_carries_exactly_the_rule_groups() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "mews.rules.yaml").read_text())
    resource = yaml.safe_load((DEPLOY / "k8s" / "base" / "monitoring" / "prometheusrule.yaml").read_text())
    assert resource["spec"]["groups"] == rules["groups"]
    assert resource["metadata"]["labels"]["release"] == "kube-prometheus-stack"
