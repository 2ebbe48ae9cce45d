"""Builds the assistant from settings (called from the app's lifespan, never at import)."""

from __future__ import annotations

from sqlalchemy import Engine

from assistant.chat.ledger import AnswerLedger, FreeLedger, PayoutsLedger
from assistant.chat.llm import LlmGateway
from assistant.chat.orchestrator import Assistant
from assistant.settings import Settings
from retrieval.knowledge import KnowledgeBase


def build_assistant(settings: Settings, kb: KnowledgeBase, engine: Engine, ledger: AnswerLedger | None = None) -> Assistant:
    """The assistant over this knowledge base; answers are paid through the payouts ledger
    (``OPENCHAT_PRICE_PER_ANSWER`` and both per-1k token prices 0 make them free)."""
    gateway = LlmGateway(settings.app)
    if ledger is None:
        pay = settings.payouts
        prices = (pay.price_per_answer, pay.price_per_1k_prompt_tokens, pay.price_per_1k_completion_tokens)
        ledger = PayoutsLedger(pay.price_per_answer, pay.platform_fee_bps, *prices[1:]) if any(prices) else FreeLedger()
    return Assistant(kb, engine, gateway, ledger, top_k=settings.app.chat_top_k,
                     default_max_tokens=settings.app.llm_max_tokens, max_tokens=settings.app.chat_max_tokens,
                     history_tokens=settings.app.chat_history_tokens)
