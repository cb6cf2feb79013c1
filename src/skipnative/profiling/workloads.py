"""Default workloads: a decoder with Llama-3.2-1B's shape and random weights.

Built from a transformers config (nothing is downloaded): hidden 2048, 16
layers, 32 heads, 8 KV heads, intermediate 8192, vocab 128256, bf16. Needs
torch and transformers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

LLAMA_3_2_1B = {
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 8192,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
}


def llama_config(**overrides: Any):
    from transformers import LlamaConfig

    return LlamaConfig(**{**LLAMA_3_2_1B, **overrides})


def build_decoder(
    config=None,
    *,
    device: str = "cuda",
    dtype: str = "bfloat16",
    seed: int = 0,
    model_path: str | None = None,
):
    """A LlamaForCausalLM with random weights (or a local checkpoint folder, offline)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    torch_dtype = getattr(torch, dtype)
    if model_path is not None:
        model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch_dtype, local_files_only=True
        )
        return model.to(device).eval()
    torch.manual_seed(seed)
    config = config if config is not None else llama_config()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def prefill(
    model, batch: int, seq_len: int, *, device: str = "cuda", seed: int = 0
) -> Callable[[], Any]:
    """A callable that runs one prefill (forward over batch x seq_len tokens)."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), generator=g).to(device)

    def run():
        with torch.inference_mode():
            return model(input_ids=ids, use_cache=False).logits

    return run


def decode(
    model, batch: int, context_len: int, *, device: str = "cuda", seed: int = 0
) -> Callable[[], Any]:
    """A callable that generates one token per call with a KV cache of `context_len`."""
    import torch
    from transformers import DynamicCache

    g = torch.Generator(device="cpu").manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch, context_len), generator=g).to(device)
    # transformers renamed past_key_values to cache; pass whichever this version takes
    params = inspect.signature(model.forward).parameters
    cache_arg = "cache" if "cache" in params else "past_key_values"
    with torch.inference_mode():
        cache = DynamicCache()
        out = model(input_ids=ids, use_cache=True, **{cache_arg: cache})
    next_ids = out.logits[:, -1:].argmax(-1)
    snapshot = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]

    def run():
        # restore the cache to context_len tokens, then decode one token
        for layer, (k, v) in zip(cache.layers, snapshot):
            layer.keys, layer.values = k.clone(), v.clone()
        with torch.inference_mode():
            return model(input_ids=next_ids, use_cache=True, **{cache_arg: cache}).logits

    return run


def as_cuda_graph(fn: Callable[[], Any]) -> Callable[[], Any]:
    """`fn` captured once as a CUDA graph; the result replays it (same inputs, same
    output buffers). Warms up on a side stream first, as capture requires."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    torch.cuda.synchronize()
    return graph.replay
