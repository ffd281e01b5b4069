from shared import topics


def test_topic_names_carry_a_version():
    for topic in topics.ALL:
        assert topic.name.startswith("mews.")
        assert topic.name.rsplit(".", 1)[-1].startswith("v")


def test_material_keyed_input_topics_are_copartitioned():
    inputs = [topics.PRICES, topics.NEWS, topics.TRADE, topics.LEADTIMES, topics.STOCKS]
    assert len({t.partitions for t in inputs}) == 1


def test_state_topics_are_compacted_and_event_topics_are_not():
    assert topics.INDICATORS.config()["cleanup.policy"] == "compact"
    assert topics.PRICES.config()["cleanup.policy"] == "delete"


def test_namespace_prefixes_the_broker_name():
    assert topics.PRICES.qualified("t1") == "t1.mews.prices.v1"
    assert topics.PRICES.qualified("") == "mews.prices.v1"


def test_names_are_unique():
    assert len({t.name for t in topics.ALL}) == len(topics.ALL)
