"""Have the reader answer prompts, so its own outputs are part of the SAE training corpus."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def generate_responses(
    model_dir: Path,
    prompts: list[str],
    out_path: Path,
    *,
    max_new_tokens: int = 160,
    batch_size: int = 96,
    seed: int = 0,
) -> Path:
    """Append ``{"prompt", "response"}`` lines to ``out_path``; resumes after the prompts already there.

    Sampling is seeded per batch, so a resumed run writes what an uninterrupted one would.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    done = 0
    if out_path.exists():
        with out_path.open(encoding="utf-8") as fh:
            done = sum(1 for line in fh if line.strip())
    if done >= len(prompts):
        return out_path
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("a", encoding="utf-8") as fh:
        for start in range(done - done % batch_size, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            texts = [
                tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                for p in batch
            ]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(seed * 1_000_003 + start)
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=True,
                    temperature=0.7,
                    top_p=0.9,
                    repetition_penalty=1.1,
                    pad_token_id=tok.pad_token_id,
                )
            answers = tok.batch_decode(out[:, enc.input_ids.shape[1] :], skip_special_tokens=True)
            for i, (prompt, answer) in enumerate(zip(batch, answers, strict=True)):
                if start + i < done:
                    continue
                fh.write(json.dumps({"prompt": prompt, "response": answer.strip()}) + "\n")
            fh.flush()
            log.info("generated %d/%d responses", min(start + batch_size, len(prompts)), len(prompts))
    return out_path
