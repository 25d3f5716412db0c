"""The review page (`review --format html`) as a browser shows it: the real plan of
test_review (a destroy, replaces, a create, updates with a secret and a policy change)
rendered by headless Chromium."""

from __future__ import annotations

import json

import pytest

from tests.browser import rendered_dom, screenshot
from tests.test_review import NEW_SECRET, SECRET, TOKEN, _review, real_plan  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page(real_plan, tmp_path_factory):  # noqa: F811
    root, out, _ = real_plan
    where = tmp_path_factory.mktemp("page")
    path = where / "review.html"
    result = _review(root, out, "--format", "html", "--out", str(path), "--no-checkov")
    assert result.exit_code == 0, result.output
    data = json.loads(_review(root, out, "--format", "json", "--no-checkov").output)
    return path, where, data, result.output


def test_html_to_a_file_prints_the_headline_and_where_the_page_is(page):
    path, _, data, output = page
    assert output == f"{data['headline']}\nReview page: {path}\n"


def test_chromium_renders_headline_counts_and_destructive_changes_first(page):
    path, where, data, _ = page
    dom, _ = rendered_dom(path, where / "profile")
    assert dom.by_id("headline").text == data["headline"]
    counts = {li.attrs["data-kind"]: int(li.find_all("b")[0].text) for li in dom.by_id("counts").find_all("li")}
    assert counts == {**data["counts"], "output changes": 2}
    sections = [s.attrs["id"] for s in dom.find_all("section")]
    assert sections == ["destroy", "replace", "create-before-destroy", "create", "update", "move", "outputs"]
    resources = dom.find_all("details", "resource")
    assert [r.find_all("code", "address")[0].text for r in resources] == [c["address"] for c in data["changes"]]
    # Destructive changes open, the rest closed, each with its attribute diff inside.
    assert [r.attrs["data-action"] for r in resources if "open" in r.attrs] == [
        "destroy", "replace", "create-before-destroy"]
    destroy = dom.by_id("destroy").find_all("details", "resource")[0]
    rows = {tr.find_all("td")[0].text: [td.text for td in tr.find_all("td")[1:]]
            for tr in destroy.find_all("tr", "attribute")}
    assert rows["input"] == ['"item-2"', ""] and rows["output"] == ['"item-2"', ""]
    model = dom.by_id("replace").find_all("tr", "attribute")
    assert any("forces replacement" in tr.text and "triggers_replace" in tr.text for tr in model)


def test_chromium_shows_the_policy_change_as_statements(page):
    path, where, _, _ = page
    dom, _ = rendered_dom(path, where / "profile")
    policy = next(r for r in dom.find_all("details", "resource")
                  if r.find_all("code", "address")[0].text == "terraform_data.policy")
    doc = policy.find_all("ul", "doc")[0]
    items = {(li.attrs["class"], li.text) for li in doc.find_all("li")}
    assert ("added", "+ Statement ReadModels Action: s3:ListBucket") in items
    assert ("removed", "- Statement LegacyWrite: Allow s3:PutObject on arn:aws:s3:::legacy/*") in items
    whole = policy.find_all("details")[0]  # the whole documents, indented, beside the diff
    assert '"Sid": "DenyInsecure"' in whole.text and '"Sid": "LegacyWrite"' in whole.text


def test_the_page_holds_no_secret_and_loads_nothing(page):
    path, where, _, _ = page
    dom, serialised = rendered_dom(path, where / "profile")
    for text in (serialised, path.read_text()):
        for secret in (SECRET, NEW_SECRET, TOKEN):
            assert secret not in text
        assert "\u202e" not in text
    assert "uses *** \\u202e" in dom.text
    sensitive = [tr for tr in dom.find_all("tr", "attribute") if "(sensitive)" in tr.text]
    assert sensitive, "the changed sensitive input is listed, marked"
    # Self-contained: nothing the page could fetch.
    assert not [e for e in dom.iter() if e.attrs.get("src") or e.tag in ("script", "link", "img", "iframe")]
    assert not [e for e in dom.find_all("a") if not (e.attrs.get("href") or "#").startswith("#")]


def test_chromium_screenshot_of_the_page(page):
    path, where, _, _ = page
    shot = where / "review.png"
    assert screenshot(path, where / "profile", shot, 1280, 1600) == (1280, 1600)
    # A blank or unstyled page compresses to a few kilobytes; this one has text and colour.
    assert shot.stat().st_size > 30_000
