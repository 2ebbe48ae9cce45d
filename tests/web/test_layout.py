"""Phone width (375 px): no horizontal overflow on any page; the sidebar opens from the menu."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import LiveServer, new_address
from tests.web.conftest import contribute, shot

PHONE = {"width": 375, "height": 740}


def overflow(page: Page) -> int:
    """How far the page is wider than the viewport (0 when nothing sticks out)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def test_phone_layout_has_no_horizontal_overflow(page: Page, web: LiveServer) -> None:
    who = new_address()
    contribute(web, "Hummingbirds are the only birds that can fly backwards, beating their wings up to eighty "
               "times a second. Averylongunbrokenwordthatcouldpushthelayoutsidewaysifnothingwrappedit.", who,
               title="Hummingbird flight")
    page.set_viewport_size(PHONE)
    page.goto("/")
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    expect(page.locator("#prompt")).to_be_in_viewport()
    page.fill("#prompt", "Which birds can fly backwards?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.assistant .source")).to_have_count(1)
    assert overflow(page) == 0
    box = page.locator(".composer-box").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(page, "phone-chat")
    page.click("#menu-toggle")
    expect(page.locator("#sidebar")).to_be_in_viewport()
    expect(page.locator("#conversation-list .conv")).not_to_have_count(0)
    page.wait_for_timeout(250)  # the slide-in transition
    shot(page, "phone-sidebar")
    page.click("#scrim", position={"x": 350, "y": 400})
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    for path in ("/contribute", f"/earnings/{who}"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert overflow(page) == 0, path
        shot(page, "phone" + path.split("/")[1].replace("earnings", "-earnings").replace("contribute", "-contribute"), full_page=True)
