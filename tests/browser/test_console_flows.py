"""The console in a real browser, as its users meet it: a company signs in, uploads a bill of materials, subscribes,
receives an alert from the real broker, acknowledges it and gives feedback; a ministry runs a stress test. Every
page passes axe-core without serious or critical violations and is saved under var/screenshots/.

The tests of this module build on each other in file order, on one browser and one stack.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from services.notify.store import models
from services.notify.store.db import unit_of_work
from shared.events import Severity
from tests.browser.conftest import save_screenshot, serious_violations
from tests.eventually import eventually_blocking
from tests.integration.notify.world import breach, publish

pytestmark = [pytest.mark.browser, pytest.mark.integration]

BOM = (
    "product,component,material,share,origin_country,supplier\n"
    "X-band radar module,GaN power amplifier,gallium,0.02,CN,Wafer Works\n"
    "X-band radar module,Ge infrared window,germanium,0.05,CN,\n"
)


def _document(driver) -> tuple[float, str] | None:
    """The current document's identity (its time origin, new with every navigation) and its load state; None
    while one document is replacing another and no script can run."""
    try:
        origin, state = driver.execute_script("return [performance.timeOrigin, document.readyState]")
    except WebDriverException:  # the script met the old document's unload, or no new context yet
        return None
    return origin, state


def _loaded_document(driver) -> float:
    """The time origin of the current document, once it has loaded."""
    found = WebDriverWait(driver, 15).until(
        lambda d: (doc := _document(d)) is not None and doc[1] == "complete" and doc
    )
    return found[0]


def _navigate(driver, act) -> None:
    """Do something that loads a new page (a click, Enter in a form) on a loaded page, then wait until a new
    document, not just any, has loaded: acting on a page while the next one replaces it is what Chrome refuses
    with "Node with given id does not belong to the document"."""
    before = _loaded_document(driver)
    act()
    WebDriverWait(driver, 15).until(
        lambda d: (doc := _document(d)) is not None and doc[0] != before and doc[1] == "complete"
    )


def _follow(driver, by: str, value: str) -> None:
    """Click a link or submit button, found on the loaded page, and wait for the next page to load."""
    _navigate(driver, lambda: driver.find_element(by, value).click())


def _check_page(driver, name: str) -> None:
    """Screenshot the page and hold it to WCAG 2.1 AA as axe-core checks it."""
    save_screenshot(driver, name)
    assert serious_violations(driver) == [], f"{name}: accessibility violations"


def _h1(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def _sign_in(driver, url: str, key: str) -> None:
    driver.get(f"{url}/console")
    assert _h1(driver) == "Sign in"
    # Keyboard only: the skip link comes first, then the language buttons; the key field takes the Enter key.
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert driver.switch_to.active_element.text == "Skip to content"
    _navigate(driver, lambda: driver.find_element(By.ID, "api_key").send_keys(key, Keys.ENTER))


def test_company_signs_in_uploads_a_bom_and_subscribes(browser, console_stack, tmp_path: Path):
    driver, url = browser, console_stack.url
    driver.get(f"{url}/console/alerts")
    assert "/console/sign-in" in driver.current_url
    _check_page(driver, "sign-in")
    _navigate(
        driver, lambda: driver.find_element(By.ID, "api_key").send_keys("mews_not-a-valid-key-at-all", Keys.ENTER)
    )
    assert "That key is not valid." in driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
    _sign_in(driver, url, console_stack.company_key)
    assert _h1(driver) == "Alerts"
    assert "No alerts match." in driver.page_source

    _follow(driver, By.LINK_TEXT, "Products")
    bad = tmp_path / "bom-with-errors.csv"
    bad.write_text(BOM.replace("germanium,0.05", "germanum,0.05"))
    driver.find_element(By.ID, "bom-file").send_keys(str(bad))
    _follow(driver, By.CSS_SELECTOR, "form[action='/console/products/upload'] button")
    errors = driver.find_element(By.CSS_SELECTOR, ".error[role=alert]").text
    assert "Nothing was imported." in errors
    assert "Row 3: material: unknown material 'germanum'" in errors
    _check_page(driver, "products-errors")
    good = tmp_path / "bom.csv"
    good.write_text(BOM)
    driver.find_element(By.ID, "bom-file").send_keys(str(good))
    _follow(driver, By.CSS_SELECTOR, "form[action='/console/products/upload'] button")
    assert driver.find_element(By.CSS_SELECTOR, "[role=status]").text == "Bill of materials imported."
    assert "X-band radar module" in driver.find_element(By.ID, "h-products").find_element(By.XPATH, "..").text
    _check_page(driver, "products")

    _follow(driver, By.LINK_TEXT, "Subscriptions and channels")
    Select(driver.find_element(By.ID, "ch-kind")).select_by_value("webhook")
    driver.find_element(By.ID, "ch-target").send_keys(console_stack.receiver_url)
    _follow(driver, By.CSS_SELECTOR, "form[action='/console/channels'] button")
    secret = driver.find_element(By.ID, "secret").text
    assert secret.startswith("whsec_")
    _check_page(driver, "channel-secret")
    _follow(driver, By.LINK_TEXT, "Subscriptions and channels")
    assert secret not in driver.page_source  # shown once
    _follow(driver, By.CSS_SELECTOR, "form[action$='/test'] button")
    assert driver.find_element(By.CSS_SELECTOR, "[role=status]").text == "The test message was delivered (HTTP 204)."
    assert console_stack.receiver.received == 1

    Select(driver.find_element(By.ID, "sub-target")).select_by_visible_text("X-band radar module")
    _follow(driver, By.CSS_SELECTOR, "form[action='/console/subscriptions'] button")
    assert driver.find_element(By.CSS_SELECTOR, "[role=status]").text == "Subscription created."
    assert "Product X-band radar module" in driver.find_element(By.ID, "h-subs").find_element(By.XPATH, "..").text
    _check_page(driver, "subscriptions")


def test_an_alert_from_the_broker_is_acknowledged_and_given_feedback(browser, console_stack):
    driver, url = browser, console_stack.url
    asyncio.run(
        publish(
            console_stack.settings, breach("fp-console-ga", material="gallium", severity=Severity.CRITICAL, value=0.72)
        )
    )
    driver.get(f"{url}/console/alerts")
    eventually_blocking(
        lambda: driver.find_elements(By.PARTIAL_LINK_TEXT, "price_spike"),
        within=60,
        what="the alert in the inbox",
        every=0.3,
        between=driver.refresh,
    )
    assert "critical" in driver.page_source
    _check_page(driver, "inbox")

    _follow(driver, By.PARTIAL_LINK_TEXT, "price_spike")
    assert "gallium: price_spike" in _h1(driver)
    assert driver.find_elements(By.CSS_SELECTOR, "figure.chart svg circle")
    _check_page(driver, "alert")
    _follow(driver, By.CSS_SELECTOR, "form[action$='/ack'] button")
    assert driver.find_element(By.CSS_SELECTOR, "[role=status]").text == "Alert acknowledged."
    assert "Acknowledged by api-key:console test" in driver.page_source
    driver.find_element(By.CSS_SELECTOR, "label[for='reason-useful']").click()
    driver.find_element(By.ID, "comment").send_keys("Our buyers are on it.")
    _follow(driver, By.CSS_SELECTOR, "form[action$='/feedback'] button")
    assert driver.find_element(By.CSS_SELECTOR, "[role=status]").text == "Thank you for the feedback."
    assert "Useful · api-key:console test" in driver.page_source
    with unit_of_work(console_stack.sessions) as s:
        [alert] = s.scalars(select(models.Alert).where(models.Alert.fingerprint == "fp-console-ga")).all()
        assert alert.acknowledged_by == "api-key:console test"
        assert [f.comment for f in s.scalars(select(models.AlertFeedback))] == ["Our buyers are on it."]

    _follow(driver, By.LINK_TEXT, "Delivery log")
    eventually_blocking(
        lambda: "delivered" in driver.find_element(By.TAG_NAME, "main").text,
        within=60,
        what="the webhook delivered",
        every=0.3,
        between=driver.refresh,
    )
    assert console_stack.receiver.received >= 2  # the test message, then the alert
    _check_page(driver, "deliveries")

    _follow(driver, By.CSS_SELECTOR, "button[name=lang][value=nl]")
    assert _h1(driver) == "Verzendlog"
    _follow(driver, By.LINK_TEXT, "Meldingen")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl"
    assert "kritiek" in driver.page_source
    _check_page(driver, "inbox-nl")
    _follow(driver, By.CSS_SELECTOR, "button[name=lang][value=en]")
    assert _h1(driver) == "Alerts"
    _follow(driver, By.CSS_SELECTOR, "form[action='/console/sign-out'] button")
    assert _h1(driver) == "Sign in"
    driver.get(f"{url}/console/alerts")
    assert "/console/sign-in" in driver.current_url


def test_a_ministry_sees_the_crisis_and_runs_a_stress_test(browser, console_stack):
    driver, url = browser, console_stack.url
    _sign_in(driver, url, console_stack.ministry_key)
    assert _h1(driver) == "Crisis"
    firing = driver.find_element(By.ID, "h-firing").find_element(By.XPATH, "..").text
    assert "Demo Radar Systems B.V." in firing
    Select(driver.find_element(By.ID, "st-material")).select_by_value("gallium")
    driver.find_element(By.ID, "st-country").send_keys("CN")
    _follow(driver, By.CSS_SELECTOR, "form[action='/console/crisis/stress-test'] button")
    result = driver.find_element(By.ID, "stress-result").find_element(By.XPATH, "..").text
    assert "X-band radar module › GaN power amplifier" in result
    assert "Demo Radar Systems B.V." in result
    _check_page(driver, "crisis")
    _follow(driver, By.LINK_TEXT, "Ops desk")
    assert "Demo Radar Systems B.V." not in driver.find_element(By.TAG_NAME, "main").text  # counts, not names
    assert driver.find_elements(By.CSS_SELECTOR, "svg.bar")
    risk = driver.find_element(By.ID, "h-risk").find_element(By.XPATH, "..")
    assert [
        row.find_elements(By.TAG_NAME, "td")[1].text for row in risk.find_elements(By.CSS_SELECTOR, "tbody tr")
    ] == ["gallium", "germanium", "tungsten"]
    assert len(risk.find_elements(By.CSS_SELECTOR, "svg.spark polyline")) == 12  # 3 materials x (score + 3)
    feeds = driver.find_element(By.ID, "h-feeds").find_element(By.XPATH, "..").text
    assert "usgs-mcs" in feeds
    assert "HTTP 503" in feeds
    _check_page(driver, "ops")
    driver.get(f"{url}/console/products")
    assert "No products yet." in driver.page_source  # the ministry's own products, never the company's


def test_a_user_signs_in_with_an_emailed_link(browser, console_stack):
    driver, url = browser, console_stack.url
    driver.get(f"{url}/console/sign-in")
    if driver.find_elements(By.CSS_SELECTOR, "form[action='/console/sign-out'] button"):
        _follow(driver, By.CSS_SELECTOR, "form[action='/console/sign-out'] button")
    _navigate(driver, lambda: driver.find_element(By.ID, "email").send_keys("buyer@radar.test", Keys.ENTER))
    assert "a sign-in link is on its way" in driver.find_element(By.ID, "link-sent").text
    _check_page(driver, "sign-in-link-sent")
    [(_, mail)] = eventually_blocking(
        lambda: [m for m in console_stack.inbox.messages if "buyer@radar.test" in m[0]],
        within=60,
        what="the sign-in email",
        every=0.3,
    )
    [link] = re.findall(r"http://\S+/console/sign-in/link/\S+", mail.get_body(("plain",)).get_content())
    driver.get(link)
    assert "Sign in to Demo Radar Systems B.V. as buyer@radar.test?" in driver.find_element(By.TAG_NAME, "main").text
    _check_page(driver, "sign-in-link")
    _follow(driver, By.ID, "use-link")
    assert _h1(driver) == "Alerts"
    assert "buyer@radar.test" in driver.find_element(By.TAG_NAME, "header").text
    driver.get(link)  # used once: the link is spent
    assert "expired or was already used" in driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
