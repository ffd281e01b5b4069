"""Reference data: governance (WGI), world production (USGS MCS) and the EU CRM study, built and shipped."""
