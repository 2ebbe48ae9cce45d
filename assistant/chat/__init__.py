"""Chat orchestration: prompts, the LLM gateway, the extractive responder, citations, answers."""

import os

# litellm fetches its model cost map from GitHub at import unless told to use its bundled
# copy; nothing may reach the network at import time, so this is set before any import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
