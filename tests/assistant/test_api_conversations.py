"""Conversation rename and delete (the web chat's sidebar), over HTTP: the openai SDK has no such calls."""

from __future__ import annotations

import openai
import sqlalchemy as sa

from assistant.auth import ApiKeys
from tests.assistant.test_api_chat import MODEL, facts, sdk  # noqa: F401  (facts is a fixture)
from tests.assistant.test_api_knowledge import assert_openai_error
from tests.conftest import DEV_KEY, LiveServer


def _ask(api: LiveServer, question: str) -> tuple[str, str]:
    reply = sdk(api).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}])
    extra = reply.model_extra["openchat"]
    return extra["conversation_id"], extra["answer_id"]


def test_rename_conversation(api: LiveServer, facts: dict[str, str]) -> None:  # noqa: F811
    conv_id, _ = _ask(api, "How do honey bees communicate?")
    with api.client() as c:
        resp = c.patch(f"/v1/conversations/{conv_id}", json={"title": "  Bees and dances  "})
        assert resp.status_code == 200, resp.text
        assert resp.json()["title"] == "Bees and dances"
        assert c.get(f"/v1/conversations/{conv_id}").json()["title"] == "Bees and dances"
        listed = {x["id"]: x["title"] for x in c.get("/v1/conversations").json()["data"]}
        assert listed[conv_id] == "Bees and dances"
        assert_openai_error(c.patch(f"/v1/conversations/{conv_id}", json={"title": "   "}), 400, "invalid_request")
        assert_openai_error(c.patch(f"/v1/conversations/{conv_id}", json={"title": "x" * 201}), 400)
        assert_openai_error(c.patch(f"/v1/conversations/{conv_id}", json={}), 400)
        assert_openai_error(c.patch("/v1/conversations/conv_missing", json={"title": "t"}), 404, "not_found")
        # A refused rename changed nothing.
        assert c.get(f"/v1/conversations/{conv_id}").json()["title"] == "Bees and dances"
    with api.client(None) as c:
        assert_openai_error(c.patch(f"/v1/conversations/{conv_id}", json={"title": "t"}), 401, "missing_api_key")


def test_delete_conversation_keeps_its_answers(api: LiveServer, facts: dict[str, str]) -> None:  # noqa: F811
    conv_id, answer_id = _ask(api, "What are Saturn's rings made of?")
    app = api.server.config.app
    app.state.api_keys = ApiKeys({DEV_KEY: "dev", "other-key": "other"})
    with api.client("other-key") as c:  # someone else's conversation is not theirs to delete
        assert_openai_error(c.delete(f"/v1/conversations/{conv_id}"), 404, "not_found")
        assert_openai_error(c.patch(f"/v1/conversations/{conv_id}", json={"title": "mine"}), 404, "not_found")
    with api.client() as c:
        resp = c.delete(f"/v1/conversations/{conv_id}")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"id": conv_id, "object": "conversation.deleted", "deleted": True}
        assert conv_id not in [x["id"] for x in c.get("/v1/conversations").json()["data"]]
        assert_openai_error(c.get(f"/v1/conversations/{conv_id}"), 404, "not_found")
        assert_openai_error(c.delete(f"/v1/conversations/{conv_id}"), 404, "not_found")
        assert_openai_error(c.patch(f"/v1/conversations/{conv_id}", json={"title": "t"}), 404, "not_found")
        # The answer is a money record: it is still there, and still readable by its asker.
        answer = c.get(f"/v1/answers/{answer_id}")
        assert answer.status_code == 200 and answer.json()["conversation_id"] == conv_id
    with app.state.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT deleted_at FROM conversations WHERE id = :id"), {"id": conv_id}).one()
        assert row.deleted_at is not None
        assert conn.execute(sa.text("SELECT count(*) FROM answers WHERE id = :id"), {"id": answer_id}).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM messages WHERE conversation_id = :id"), {"id": conv_id}).scalar() == 2
    # A deleted conversation cannot be continued.
    try:
        sdk(api).chat.completions.create(model=MODEL, extra_body={"conversation_id": conv_id},
                                         messages=[{"role": "user", "content": "Saturn?"}])
        raise AssertionError("a deleted conversation was continued")
    except openai.NotFoundError as exc:
        assert exc.code == "not_found"
