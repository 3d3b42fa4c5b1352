"""The self-service access page (docs/self-service.md) in a real browser, on the shared control plane.

headless Chromium (tests/e2e/browser.py) signs in at authsvc's public listener as carol from the
real slapd, sees her groups, downloads the kubeconfig the page preselects (exec mode) and a token
one; the real kubectl reads both (`config view`), and the credentials they yield authenticate to
the real kube-apiserver (the exec one through `authsvc login`, the token one through the webhook).
The token, revoked on the credentials page, is then refused by the API server.
Twins in the same browser: a wrong password and an unknown user get the same words; a form
without its CSRF token is refused; the session cookie's flags as Chromium stores them; logout
ends the session (its cookie, replayed, opens nothing); a person revoked with
`authsvc access revoke` cannot sign in.

One browser for the module; a screenshot of each page goes to the folder printed at the end
(under pytest's basetemp: `self-service-screenshots*`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.components.slapd import BOB, CAROL
from tests.e2e.browser import PAGE_LOAD_TIMEOUT, start_chromium
from tests.e2e.cluster import E2ECluster
from tests.e2e.directory import directory_logins
from tests.e2e.harness import eventually

LDAP_GROUP = "ops"  # carol's directory group
BANNER = "Staging clusters: ask #platform for a role binding."
SESSION_COOKIE = "__Host-authsvc-session"
INVALID = "Invalid user name or password."


@pytest.fixture(scope="module")
def page_cluster(cluster: E2ECluster) -> Iterator[E2ECluster]:
    """slapd behind /login and the page (exec and token offered); undone after."""
    with directory_logins(cluster, {"self_service": {"enabled": True, "modes": ["exec", "token"], "banner": BANNER}}):
        yield cluster


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("self-service-screenshots")


@pytest.fixture(scope="module")
def browser(page_cluster: E2ECluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("self-service-browser")
    downloads = workdir / "downloads"
    downloads.mkdir()
    serving = page_cluster.home / "pki" / "authsvc" / "serving.crt"
    driver = start_chromium(serving, workdir, downloads=downloads, window="1000,1100")
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _by(selector: str) -> tuple[str, str]:
    from selenium.webdriver.common.by import By

    return By.CSS_SELECTOR, selector


def _text(driver: Any, selector: str) -> str:
    return str(driver.find_element(*_by(selector)).text)


def _wait_for(driver: Any, selector: str) -> None:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    WebDriverWait(driver, PAGE_LOAD_TIMEOUT).until(expected_conditions.presence_of_element_located(_by(selector)))


def _click_to_load(driver: Any, selector: str, then: str) -> None:
    """Click what loads another page, and wait for that page's `then`: the old page must be gone
    first (both pages may have an h1 or a notice, and a look right after the click sees the old one)."""
    from selenium.webdriver.support.wait import WebDriverWait

    old_page = driver.find_element(*_by("html"))
    driver.find_element(*_by(selector)).click()
    WebDriverWait(driver, PAGE_LOAD_TIMEOUT).until(_gone(old_page))
    _wait_for(driver, then)


def _gone(element: Any) -> Callable[[Any], bool]:
    """Selenium's staleness_of, also when chromedriver, asked about the old page mid-navigation,
    answers "Node with given id does not belong to the document" (a generic WebDriverException,
    not a StaleElementReferenceException): the page is gone all the same. Anything else raises."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_: Any) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as e:
            if "does not belong to the document" in (e.msg or ""):
                return True
            raise
        return False

    return check


def _sign_in(driver: Any, cluster: E2ECluster, user: str, password: str) -> None:
    driver.get(cluster.public_url + "/")
    _wait_for(driver, "#username")
    driver.find_element(*_by("#username")).send_keys(user)
    driver.find_element(*_by("#password")).send_keys(password)
    _click_to_load(driver, "button[type=submit]", "h1")


def _download(driver: Any, mode: str) -> Path:
    """Choose `mode`, press the button; the file Chromium saved."""
    before = set(driver.downloads.iterdir())
    driver.find_element(*_by(f"#mode-{mode}")).click()
    driver.find_element(*_by("#download-button")).click()

    def saved() -> list[Path]:
        return [p for p in driver.downloads.iterdir() if p not in before and not p.name.endswith(".crdownload")]

    files = eventually(saved, bool, timeout=PAGE_LOAD_TIMEOUT)
    assert files, f"no download in {driver.downloads}"
    (found,) = files
    kept = found.with_name(f"{mode}-{found.name}")
    found.rename(kept)
    return kept


def _claims(kubeconfig: Path) -> dict[str, Any]:
    """The (unverified) claims of a token kubeconfig's token: which row of the page is its."""
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _session_cookie(driver: Any) -> dict[str, Any]:
    cookie: dict[str, Any] = driver.get_cookie(SESSION_COOKIE)
    assert cookie, driver.get_cookies()
    return cookie


def _replayed(cluster: E2ECluster, secret: str) -> requests.Response:
    """GET /access with a copy of the session cookie, outside the browser."""
    return requests.get(
        cluster.public_url + "/access",
        cookies={SESSION_COOKIE: secret},
        verify=str(cluster.ca_file),
        allow_redirects=False,
        timeout=30,
    )


def test_sign_in_download_a_kubeconfig_and_use_it(page_cluster: E2ECluster, browser: Any, screenshots: Path) -> None:
    cluster, driver = page_cluster, browser
    driver.get(cluster.public_url + "/")
    _wait_for(driver, "#username")
    assert BANNER in driver.page_source
    driver.save_screenshot(str(screenshots / "1-sign-in.png"))

    _sign_in(driver, cluster, CAROL.uid, CAROL.password)
    assert driver.current_url == cluster.public_url + "/access", driver.page_source[:2000]
    assert _text(driver, "#user") == CAROL.uid
    groups = [li.text for li in driver.find_elements(*_by("#groups li"))]
    assert LDAP_GROUP in groups, groups
    assert cluster.server in _text(driver, "#clusters")
    cookie = _session_cookie(driver)
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert not cookie.get("domain", "").startswith(".")  # __Host-: this host only
    lifetime = cookie["expiry"] - dt.datetime.now(dt.UTC).timestamp()
    assert 0 < lifetime <= 15 * 60 + 5, lifetime  # self_service.session_ttl
    copy = driver.find_elements(*_by("button.copy"))
    assert copy and all(b.is_displayed() for b in copy)  # copy.js ran under the page's CSP
    driver.save_screenshot(str(screenshots / "2-access.png"))

    # The preselected mode: exec. kubectl reads the file; its plugin logs carol in at /login.
    exec_file = _download(driver, "exec")
    viewed = cluster.kubectl(exec_file, "config", "view", "-o", "json")
    assert viewed.ok, viewed.describe()
    user = json.loads(viewed.stdout)["users"][0]
    assert user["name"] == CAROL.uid and user["user"]["exec"]["command"] == "authsvc"
    assert f"{cluster.public_url}/login" in user["user"]["exec"]["args"]
    cluster.bind("e2e:self-service-ops-reads-namespaces", group=LDAP_GROUP)
    cache = cluster.path("self-service-login-cache")
    cache.mkdir(mode=0o700)
    env = {"AUTHSVC_USERNAME": CAROL.uid, "AUTHSVC_PASSWORD": CAROL.password, "XDG_CACHE_HOME": str(cache)}
    listed = eventually(lambda: cluster.kubectl(exec_file, "get", "namespaces", "-o", "name", env=env), lambda r: r.ok)
    assert listed.ok and "namespace/default" in listed.stdout, listed.describe()

    # A token kubeconfig: no plugin; the API server asks the webhook about the token.
    token_file = _download(driver, "token")
    assert "token" in yaml.safe_load(token_file.read_text())["users"][0]["user"]
    by_token = eventually(lambda: cluster.kubectl(token_file, "get", "namespaces", "-o", "name"), lambda r: r.ok)
    assert by_token.ok, by_token.describe()
    denied = cluster.kubectl(token_file, "get", "secrets", "-A")
    assert f'User "{CAROL.uid}" cannot list resource "secrets"' in denied.stderr, denied.describe()

    _click_to_load(driver, "nav a[href='/access/credentials']", "#credentials")
    jti = _claims(token_file)["jti"]
    assert jti in _text(driver, "#credentials") and "exec" in _text(driver, "#kubeconfigs")
    driver.save_screenshot(str(screenshots / "3-credentials.png"))

    # Revoke that token on the page: the API server refuses it once the webhook says no (the
    # revocation set is read again within tokens.cache_refresh; kube-apiserver's own success
    # cache holds an answer up to 10 s).
    _click_to_load(driver, f"button[aria-label='Revoke token {jti}']", ".notice")
    assert f"Revoked token {jti}." in _text(driver, ".notice")
    refused = eventually(lambda: cluster.kubectl(token_file, "get", "namespaces"), lambda r: not r.ok, timeout=25)
    assert "Unauthorized" in refused.stderr, refused.describe()
    assert cluster.kubectl(exec_file, "get", "namespaces", "-o", "name", env=env).ok  # her login is not a token of it

    # Logout ends the session: the same cookie, replayed, opens nothing.
    secret = _session_cookie(driver)["value"]
    assert _replayed(cluster, secret).status_code == 200  # the twin: before logout it does
    _click_to_load(driver, "nav .logout button", ".notice")
    assert "You signed out." in driver.page_source and driver.get_cookie(SESSION_COOKIE) is None
    driver.save_screenshot(str(screenshots / "4-signed-out.png"))
    after = _replayed(cluster, secret)
    assert after.status_code == 303 and after.headers["Location"] == "/"
    print(f"screenshots: {screenshots}")


def test_refusals_say_nothing_about_who_exists(page_cluster: E2ECluster, browser: Any, screenshots: Path) -> None:
    cluster, driver = page_cluster, browser
    _sign_in(driver, cluster, CAROL.uid, "not-" + CAROL.password)
    wrong = _text(driver, ".error")
    driver.save_screenshot(str(screenshots / "5-wrong-password.png"))
    _sign_in(driver, cluster, "nobody-here", "not-a-password")
    assert wrong == _text(driver, ".error") == INVALID
    assert driver.get_cookie(SESSION_COOKIE) is None

    # The form without its CSRF token (removed from the page, as a forged form would lack it).
    driver.get(cluster.public_url + "/")
    _wait_for(driver, "#username")
    driver.execute_script("document.querySelector('input[name=csrf_token]').remove()")
    driver.find_element(*_by("#username")).send_keys(CAROL.uid)
    driver.find_element(*_by("#password")).send_keys(CAROL.password)
    _click_to_load(driver, "button[type=submit]", "h1")
    assert _text(driver, "h1") == "Sign-in form expired" and driver.get_cookie(SESSION_COOKIE) is None


def test_a_revoked_person_cannot_sign_in(page_cluster: E2ECluster, browser: Any, screenshots: Path) -> None:
    cluster, driver = page_cluster, browser
    _sign_in(driver, cluster, BOB.uid, BOB.password)  # the twin: bob signs in before
    assert _text(driver, "#user") == BOB.uid
    _click_to_load(driver, "nav .logout button", ".notice")
    cluster.authsvc.ok("access", "revoke", BOB.uid, "--reason", "e2e: self-service page")
    try:
        _sign_in(driver, cluster, BOB.uid, BOB.password)
        assert _text(driver, ".error") == "This account may not sign in here."
        assert driver.get_cookie(SESSION_COOKIE) is None
        driver.save_screenshot(str(screenshots / "6-revoked.png"))
    finally:
        cluster.authsvc.ok("access", "restore", BOB.uid)
