"""LLM uses of saescope: label latents, summarise a diff into hypotheses, judge a hypothesis, count the cost.

Providers (:mod:`saescope.llm.providers`): the connected MCP client's model through sampling, any
OpenAI-compatible endpoint, or none (every analysis still works; only LLM tools refuse). Documents are
untrusted: prompts quote them as data (:mod:`saescope.llm.quoting`), and every number and id in an
LLM result comes from code, never from the model's text.
"""
