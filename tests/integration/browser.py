"""Headless Chromium for tests, from the Debian packages `chromium` and `chromium-driver`
(`make browser-tools` installs them), driven by selenium. Nothing here downloads a browser:
selenium is pointed at the system binaries and told to stay offline."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def system_browser() -> tuple[str, str]:
    """(browser, driver) paths; AssertionError naming the make target when either is missing."""
    browser = next((p for name in CHROMIUM if (p := shutil.which(name))), None)
    driver = shutil.which(DRIVER) or (
        "/usr/lib/chromium/chromedriver"
        if os.path.exists("/usr/lib/chromium/chromedriver")
        else None
    )
    missing = "headless Chromium is missing: `make browser-tools` installs the Debian packages "
    missing += "chromium and chromium-driver (`make test` does it for you)"
    assert browser, missing
    assert driver, missing
    return browser, driver


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[webdriver.Chrome]:
    browser, driver = system_browser()
    os.environ["SE_OFFLINE"] = "true"  # selenium manager must never fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()
