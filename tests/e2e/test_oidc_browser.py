"""The kubelogin flow end to end, in a real browser: kubectl runs `authsvc login --browser`
(an exec-mode kubeconfig from `authsvc issue --mode exec --browser`), which prints the sign-in
URL and waits on a loopback port; headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium) opens it, the person signs in on authsvc's form, Chromium follows the redirect
to the loopback listener, the plugin exchanges the code (PKCE) and hands kubectl the ID token,
which kube-apiserver verifies natively. The next kubectl command uses the cached token.

Chromium trusts authsvc's serving certificate by its key hash only (tests/e2e/browser.py). A
screenshot of the sign-in page is saved with the test's files.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.browser import PAGE_LOAD_TIMEOUT, start_chromium
from tests.e2e.cluster import OIDC_CLIENT, OIDC_GROUP, OIDC_PASSWORD, OIDC_USER, E2ECluster
from tests.e2e.harness import child_env

SIGN_IN_TIMEOUT = PAGE_LOAD_TIMEOUT


@pytest.fixture
def chromium(cluster: E2ECluster, tmp_path: Path) -> Iterator[object]:
    driver = start_chromium(cluster.home / "pki" / "authsvc" / "serving.crt", tmp_path)
    try:
        yield driver
    finally:
        driver.quit()


def _read_sign_in_url(stream: object, found: list[str], lines: list[str]) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        lines.append(line)
        if not found and line.startswith("https://") and "/authorize?" in line:
            found.append(line.strip())


def test_kubectl_signs_in_through_the_browser_and_then_uses_the_cached_token(
    cluster: E2ECluster, chromium: object, tmp_path: Path
) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    kubeconfig = tmp_path / "olivia-browser.kubeconfig"
    cluster.authsvc.ok(
        "issue", OIDC_USER, "--mode", "exec", "--browser", "--client-id", OIDC_CLIENT, "-o", str(kubeconfig)
    )
    cluster.bind("e2e-oidc-browser-group-reader", group=OIDC_GROUP)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    # The plugin prints the URL and does not open a browser of its own: this test is the browser.
    env = child_env({"XDG_CACHE_HOME": str(cache), "AUTHSVC_NO_BROWSER": "1"}, home_dir=tmp_path)
    command = ["/usr/bin/kubectl", f"--kubeconfig={kubeconfig}", "get", "namespaces", "-o", "name"]
    kubectl = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    found: list[str] = []
    lines: list[str] = []
    reader = threading.Thread(target=_read_sign_in_url, args=(kubectl.stderr, found, lines), daemon=True)
    reader.start()
    try:
        WebDriverWait(None, SIGN_IN_TIMEOUT, poll_frequency=0.1).until(lambda _: found or kubectl.poll() is not None)
        assert found, f"no sign-in URL on kubectl's stderr: {''.join(lines)}"
        driver = chromium
        driver.get(found[0])  # type: ignore[attr-defined]
        wait = WebDriverWait(driver, SIGN_IN_TIMEOUT)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "username")))
        assert driver.find_element(By.ID, "username").get_attribute("value") == OIDC_USER  # type: ignore[attr-defined]  # login_hint
        driver.save_screenshot(str(tmp_path / "oidc-sign-in.png"))  # type: ignore[attr-defined]
        driver.find_element(By.ID, "password").send_keys(OIDC_PASSWORD)  # type: ignore[attr-defined]
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[attr-defined]
        try:
            wait.until(lambda d: d.current_url.startswith("http://127.0.0.1:"))
        except TimeoutException:
            pytest.fail(f"no redirect to the plugin: at {driver.current_url}: {driver.page_source[:2000]}")  # type: ignore[attr-defined]
        assert "Signed in" in driver.page_source  # type: ignore[attr-defined]  # the plugin's loopback page
        stdout, _ = kubectl.communicate(timeout=SIGN_IN_TIMEOUT)
    finally:
        if kubectl.poll() is None:
            kubectl.kill()
            kubectl.wait()
    reader.join(timeout=5)
    assert kubectl.returncode == 0, "".join(lines)
    assert "namespace/default" in stdout

    # The token is cached (0600): the next command needs no browser and prints no URL.
    cache_file = cache / "authsvc" / "tokens.json"
    assert os.stat(cache_file).st_mode & 0o077 == 0
    again = cluster.kubectl(
        kubeconfig, "get", "namespaces", "-o", "name", env={"XDG_CACHE_HOME": str(cache), "AUTHSVC_NO_BROWSER": "1"}
    )
    assert again.ok and "/authorize?" not in again.stderr, again.describe()
