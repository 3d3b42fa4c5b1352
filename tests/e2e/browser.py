"""Headless Chromium for the e2e tests: Debian's chromium + chromium-driver, driven by Selenium
(scripts/system-deps.sh installs both). Used by test_oidc_browser.py and test_self_service.py.

Chromium trusts authsvc's serving certificate through --ignore-certificate-errors-spki-list with
that certificate's key hash only (no blanket certificate bypass).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.components.support import require_binary

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PAGE_LOAD_TIMEOUT = 60.0
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def spki_hash(cert_file: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): how Chromium names a certificate key to trust."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def start_chromium(serving_cert: Path, workdir: Path, *, downloads: Path | None = None, window: str = "") -> Any:
    """A Selenium driver of headless Chromium that trusts `serving_cert`'s key; its profile and
    chromedriver's log in `workdir`; files it downloads land in `downloads`. Quit it when done."""
    require_binary(CHROMIUM)
    require_binary(CHROMEDRIVER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if window:
        options.add_argument(f"--window-size={window}")
    options.add_argument(f"--user-data-dir={workdir / 'chromium-profile'}")
    options.add_argument(f"--ignore-certificate-errors-spki-list={spki_hash(serving_cert)}")
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    service = Service(CHROMEDRIVER, log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    if downloads is not None:
        # Headless Chromium ignores the profile's download folder unless told through DevTools.
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver
