#include "model/torchscript_source.h"

namespace sinkscope::detail {
namespace {

// Shared by every architecture. `controls` keys are optional; an absent key leaves the computation
// exactly as without it, so an empty dictionary is bit-identical to a plain forward pass.
constexpr const char *kCommon = R"TS(
def _captures(self, key: str, layer: int, controls: Dict[str, Tensor]) -> bool:
    if key not in controls:
        return False
    return float(controls[key][layer]) > 0.5

def _causal_mask(self, t: int, past: int, controls: Dict[str, Tensor]) -> Tensor:
    # On the weights' device, so that an archive loaded on a GPU runs there (docs/gpu.md).
    dev = self.tok_embd.device
    qi = torch.arange(past, past + t, device=dev).unsqueeze(1)
    kj = torch.arange(past + t, device=dev).unsqueeze(0)
    mask = torch.zeros(t, past + t, device=dev).masked_fill(kj > qi, float("-inf"))
    if "attn_mask" in controls:
        mask = mask + controls["attn_mask"]
    return mask

def _mask_of(self, spec: Tensor, controls: Dict[str, Tensor]) -> Tensor:
    # embed_input passes [T, past] on, not the [T, Tk] mask: the CPU engine (sinkscope::attend) needs none, so
    # the other paths build it where they need it.
    return self._causal_mask(int(spec[0]), int(spec[1]), controls)

def _fused(self, layer: int, q: Tensor, controls: Dict[str, Tensor]) -> bool:
    # The CPU engine serves every control (ACT with a first pass for its columns) and every layer whose maps
    # are not captured; other devices run the LibTorch step below.
    if q.is_cuda:
        return False
    return not self._captures("capture_attn", layer, controls)

def _attend_fused(self, layer: int, q: Tensor, k: Tensor, v: Tensor, sinks: Tensor, window: int, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    # q [H, T, d], k and v [Hkv, Tk, d] (not repeated: the engine reads kv head h // (H // Hkv)); returns the
    # heads' outputs as [T, H * dv], the layout of the output projection.
    ls = str(layer)
    vnorm = torch.zeros(0)
    if self._captures("capture_vnorm", layer, controls):
        rv = v
        if v.size(0) != q.size(0):
            rv = v.repeat_interleave(q.size(0) // v.size(0), dim=0)
        if "value_scale" in controls:
            rv = rv * controls["value_scale"][layer].unsqueeze(2)
        fv = torch.matmul(rv, self.wo_gram[layer])
        vnorm = (fv * rv).sum(dim=2).clamp_min(0.0).sqrt()
        out["vnorm." + ls] = vnorm
    level = 0
    if "capture_stats" in controls:
        level = int(controls["capture_stats"][layer])
    res = sinkscope.attend(q, k, v, layer, self.attn_scale, window, sinks, vnorm, controls, level)
    if len(res) == 3:
        out["stats." + ls] = res[1]
        out["colstats." + ls] = res[2]
    return res[0]

def _probs(self, layer: int, q: Tensor, k: Tensor, mask: Tensor, controls: Dict[str, Tensor]) -> Tensor:
    scores = torch.matmul(q, k.transpose(1, 2)) * self.attn_scale
    scores = scores + mask
    if "logit_bias" in controls:
        scores = scores + controls["logit_bias"][layer].unsqueeze(1)
    if "temperature" in controls:
        scores = scores / controls["temperature"][layer].view(-1, 1, 1)
    # Extra key columns that take part in the softmax and are then dropped: the model's own learned sink
    # logits (gpt-oss) and the sink_logit mitigation's null key. Rows then sum to 1 - their share.
    extra: List[Tensor] = [scores]
    if self.has_sinks != 0:
        extra.append(self.sinks[layer].view(-1, 1, 1).expand(scores.size(0), scores.size(1), 1))
    if "sink_logit" in controls:
        extra.append(controls["sink_logit"][layer].view(-1, 1, 1).expand(scores.size(0), scores.size(1), 1))
    if len(extra) > 1:
        probs = torch.softmax(torch.cat(extra, dim=2), dim=2).narrow(2, 0, scores.size(2))
    else:
        probs = torch.softmax(scores, dim=2)
    if "act_heads" in controls:
        probs = self._act(probs, mask, controls["act_heads"][layer], controls["act_beta"][layer], controls["act_thres"][layer])
    if "head_mode" in controls:
        mode = controls["head_mode"][layer].view(-1, 1, 1)
        on_first = torch.zeros_like(probs)
        on_first[:, :, 0] = 1.0
        probs = torch.where(mode == 1.0, torch.zeros_like(probs), torch.where(mode == 2.0, on_first, probs))
    if "prob_scale" in controls:
        probs = probs * controls["prob_scale"][layer].unsqueeze(1)
        if "prob_renorm" in controls:
            probs = probs / probs.sum(dim=2, keepdim=True).clamp_min(1e-30)
    return probs

def _attend(self, layer: int, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    ls = str(layer)
    if "value_scale" in controls:
        v = v * controls["value_scale"][layer].unsqueeze(2)
    if self._captures("capture_vnorm", layer, controls):
        # ||v W_O^h||^2 = v (W_O^h^T W_O^h) v^T: the per-head Gram matrix is stored at conversion, which
        # costs d x d instead of d x D multiply-adds per key.
        fv = torch.matmul(v, self.wo_gram[layer])
        out["vnorm." + ls] = (fv * v).sum(dim=2).clamp_min(0.0).sqrt()
    t = q.size(1)
    if t > 1024 and "act_heads" not in controls and not self._captures("capture_attn", layer, controls):
        # Long prompts: query rows in blocks of 512. Every control above except ACT acts row by row, so a
        # block needs only its own scores: [H, 512, Tk] at a time instead of [H, T, Tk], memory linear in T
        # (docs/performance.md, "Long contexts"). ACT and attention capture need the whole map.
        parts: List[Tensor] = []
        for c0 in range(0, t, 512):
            c = min(512, t - c0)
            parts.append(torch.matmul(self._probs(layer, q.narrow(1, c0, c), k, mask.narrow(0, c0, c), controls), v))
        ctx = torch.cat(parts, 1)
    else:
        probs = self._probs(layer, q, k, mask, controls)
        if self._captures("capture_attn", layer, controls):
            out["attn." + ls] = probs
            if self.has_sinks != 0:
                out["sink_p." + ls] = 1.0 - probs.sum(2)
        ctx = torch.matmul(probs, v)
    if "head_gate" in controls:
        ctx = ctx * controls["head_gate"][layer].view(-1, 1, 1)
    return ctx

def _act(self, probs: Tensor, mask: Tensor, heads: Tensor, beta: Tensor, thres: Tensor) -> Tensor:
    # ACT (Yu et al. 2024, GATECH-EIC/ACT atten_process_eval) on the heads flagged in `heads` [H].
    # Column means are normalised by how many queries see each key (T - j for a plain causal mask),
    # which keeps the released rule correct when the queries follow a cache.
    if float(heads.max()) < 0.5:
        return probs
    visible = (mask > float("-inf")).sum(0).clamp_min(1).to(probs.dtype)
    over = (probs.sum(1) / visible) > thres.view(-1, 1)
    # The released code drops the first detected column (indices[1:]): the initial sink stays as it is.
    first = over & (over.long().cumsum(1) == 1)
    sinks = (over & ~first & (heads.view(-1, 1) > 0.5)).unsqueeze(1)
    b = beta.view(-1, 1, 1)
    budget = torch.where(sinks, probs, torch.zeros_like(probs)).sum(2, keepdim=True) * (1.0 - b)
    rest = torch.where(sinks, torch.zeros_like(probs), probs)
    ratios = rest / rest.sum(2, keepdim=True).clamp_min(1e-30)
    calibrated = torch.where(sinks, probs * b, probs) + budget * ratios
    return torch.where(heads.view(-1, 1, 1) > 0.5, calibrated, probs)

def _past_length(self, controls: Dict[str, Tensor]) -> int:
    if "cache_k.0" in controls:
        return controls["cache_k.0"].size(1)
    return 0

def forward(self, input_ids: Tensor, controls: Dict[str, Tensor]) -> Dict[str, Tensor]:
    out: Dict[str, Tensor] = {}
    x, spec, rope = self.embed_input(input_ids, controls)
    for layer in range(self.n_layers):
        x = self.run_block(layer, x, spec, rope, controls, out)
    self.finish(x, controls, out)
    return out

def _store_cache(self, layer: int, k: Tensor, v: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
    ls = str(layer)
    if "cache_k." + ls in controls:
        k = torch.cat((controls["cache_k." + ls], k), dim=1)
        v = torch.cat((controls["cache_v." + ls], v), dim=1)
    if "return_cache" in controls:
        out["cache_k." + ls] = k
        out["cache_v." + ls] = v
    return k, v

def _end_block(self, layer: int, x: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    x = self._patch_residual(layer, x, controls)
    if "capture_hidden" in controls:
        out["hidden." + str(layer)] = x
    return x

def _logits(self, x: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    if "last_logits_only" in controls:
        x = x.narrow(0, x.size(0) - 1, 1)
    logits = sinkscope.linear(x, self.lm_head, None)
    out["logits"] = logits
    return logits

def _patch_residual(self, layer: int, x: Tensor, controls: Dict[str, Tensor]) -> Tensor:
    key = "resid_mask." + str(layer)
    if key in controls:
        x = torch.where(controls[key] > 0.5, controls["resid_value." + str(layer)], x)
    return x
)TS";

// Every RoPE family (MODELS.md section 2) in one decoder; the differences are module attributes set by
// the converter from ModelConfig, so one code path serves (and is tested for) all of them:
//   norm_kind 0 RMSNorm / 1 LayerNorm; norm_place 0 pre / 1 sandwich (Gemma 3) / 2 post only (OLMo 2);
//   qk_norm 0 none / 1 per head / 2 over all heads; mlp_kind 0 gated / 1 plain / 2 experts;
//   act 0 SiLU / 1 GELU tanh / 2 GELU erf; windows[l] > 0: layer l sees keys q-W < k <= q;
//   layer_rope[l] picks a row of the RoPE tables (0 global, 1 local); rope_long_after > 0: longrope's long
//   factors when the sequence is longer (Phi-3). Absent weights are empty tensors (flags say which exist).
constexpr const char *kDecoder = R"TS(
def _norm(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    if self.norm_kind == 1:
        return torch.layer_norm(x, [x.size(-1)], w, b, self.norm_eps)
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.norm_eps))

def _rms(self, x: Tensor, w: Tensor) -> Tensor:
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.norm_eps))

def _lin(self, x: Tensor, w: Tensor, b: Tensor, biased: int) -> Tensor:
    # sinkscope::linear: the same product in blocks on SinkScope's thread pool (at::linear off the CPU).
    if biased != 0:
        return sinkscope.linear(x, w, b)
    return sinkscope.linear(x, w, None)

def _activation(self, x: Tensor) -> Tensor:
    if self.act == 1:
        return torch.gelu(x, approximate="tanh")
    if self.act == 2:
        return torch.gelu(x)
    return torch.silu(x)

def _rope(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    rd = self.rope_dim
    half = rd // 2
    xr = x.narrow(2, 0, rd)
    rot = torch.cat((-xr.narrow(2, half, half), xr.narrow(2, 0, half)), dim=2)
    xr = xr * cos + rot * sin
    if rd == self.head_dim:
        return xr
    return torch.cat((xr, x.narrow(2, rd, self.head_dim - rd)), dim=2)

def _window_mask(self, mask: Tensor, w: int) -> Tensor:
    t = mask.size(0)
    past = mask.size(1) - t
    qi = torch.arange(past, past + t, device=mask.device).unsqueeze(1)
    kj = torch.arange(mask.size(1), device=mask.device).unsqueeze(0)
    return mask.masked_fill(kj <= qi - w, float("-inf"))

def embed_input(self, input_ids: Tensor, controls: Dict[str, Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    ids = input_ids.reshape(-1)
    t = ids.size(0)
    past = self._past_length(controls)
    if "positions" in controls:
        pos = controls["positions"].float()
    else:
        pos = torch.arange(past + t, device=self.tok_embd.device).float()
    inv = self.rope_inv
    if self.rope_long_after > 0 and past + t > self.rope_long_after:
        inv = self.rope_long
    ang = pos.view(1, -1, 1) * inv.unsqueeze(1)
    emb = torch.cat((ang, ang), dim=2)
    scale = self.rope_mscale.view(-1, 1, 1)
    rope = torch.cat((emb.cos() * scale, emb.sin() * scale), dim=0)
    x = torch.embedding(self.tok_embd, ids)
    if self.embed_scale != 1.0:
        x = x * self.embed_scale
    return x, torch.tensor([t, past]), rope

def _attention(self, layer: int, h: Tensor, spec: Tensor, rope: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    ls = str(layer)
    t = h.size(0)
    past = int(spec[1])
    q = self._lin(h, self.wq[layer], self.bq[layer], self.qkv_bias)
    k = self._lin(h, self.wk[layer], self.bk[layer], self.qkv_bias)
    v = self._lin(h, self.wv[layer], self.bv[layer], self.qkv_bias)
    if self.qk_norm == 2:
        q = self._rms(q, self.q_norm[layer])
        k = self._rms(k, self.k_norm[layer])
    q = q.view(t, self.n_heads, self.head_dim)
    k = k.view(t, self.n_kv_heads, self.head_dim)
    v = v.view(t, self.n_kv_heads, self.head_dim)
    if self.qk_norm == 1:
        q = self._rms(q, self.q_norm[layer])
        k = self._rms(k, self.k_norm[layer])
    q = q.transpose(0, 1)
    k = k.transpose(0, 1)
    v = v.transpose(0, 1)
    k, v = self._store_cache(layer, k, v, controls, out)
    r = self.layer_rope[layer]
    n = self.rope_mscale.size(0)
    q = self._rope(q, rope[r].narrow(0, past, t), rope[n + r].narrow(0, past, t))
    k = self._rope(k, rope[r], rope[n + r])
    if self._captures("capture_qk", layer, controls):
        out["q." + ls] = q
        out["k." + ls] = k
    w = self.windows[layer]
    if self._fused(layer, q, controls):
        sinks = torch.zeros(0)
        if self.has_sinks != 0:
            sinks = self.sinks[layer]
        ctx = self._attend_fused(layer, q, k, v, sinks, w, controls, out)
        return self._lin(ctx, self.wo[layer], self.bo[layer], self.o_bias)
    if self.n_kv_heads != self.n_heads:
        k = k.repeat_interleave(self.n_heads // self.n_kv_heads, dim=0)
        v = v.repeat_interleave(self.n_heads // self.n_kv_heads, dim=0)
    mask = self._mask_of(spec, controls)
    if w > 0:
        mask = self._window_mask(mask, w)
    ctx = self._attend(layer, q, k, v, mask, controls, out)
    ctx = ctx.transpose(0, 1).reshape(t, self.n_heads * self.head_dim)
    return self._lin(ctx, self.wo[layer], self.bo[layer], self.o_bias)

def _experts(self, layer: int, h: Tensor) -> Tensor:
    logits = torch.linear(h, self.router_w[layer], self.router_b[layer])
    top, idx = torch.topk(logits, self.experts_per_tok, dim=-1)
    scores = torch.softmax(top, dim=1)
    y = torch.zeros_like(h)
    for e in range(self.n_experts):
        hit = idx == e
        rows = hit.any(1).nonzero().squeeze(1)
        if rows.numel() == 0:
            continue
        xs = h.index_select(0, rows)
        gate = torch.linear(xs, self.w_gate[layer][e], self.b_gate[layer][e]).clamp(max=self.swiglu_limit)
        up = torch.linear(xs, self.w_up[layer][e], self.b_up[layer][e]).clamp(-self.swiglu_limit, self.swiglu_limit)
        glu = gate * torch.sigmoid(gate * self.swiglu_alpha)
        ye = torch.linear((up + 1.0) * glu, self.w_down[layer][e], self.b_down[layer][e])
        weight = (scores * hit.to(scores.dtype)).sum(1).index_select(0, rows)
        y.index_add_(0, rows, ye * weight.unsqueeze(1))
    return y

def _mlp(self, layer: int, h: Tensor) -> Tensor:
    if self.mlp_kind == 2:
        return self._experts(layer, h)
    if self.mlp_kind == 1:
        u = self._activation(self._lin(h, self.w_up[layer], self.b_up[layer], self.mlp_bias))
    else:
        u = self._activation(self._lin(h, self.w_gate[layer], self.b_gate[layer], self.mlp_bias)) * self._lin(h, self.w_up[layer], self.b_up[layer], self.mlp_bias)
    return self._lin(u, self.w_down[layer], self.b_down[layer], self.mlp_bias)

def run_block(self, layer: int, x: Tensor, spec: Tensor, rope: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    h = x
    if self.norm_place != 2:
        h = self._norm(x, self.attn_norm[layer], self.attn_norm_b[layer])
    a = self._attention(layer, h, spec, rope, controls, out)
    if self.parallel_residual != 0:
        x = x + a + self._mlp(layer, self._norm(x, self.ffn_norm[layer], self.ffn_norm_b[layer]))
        return self._end_block(layer, x, controls, out)
    if self.norm_place != 0:
        a = self._rms(a, self.post_attn_norm[layer])
    x = x + a
    h = x
    if self.norm_place != 2:
        h = self._norm(x, self.ffn_norm[layer], self.ffn_norm_b[layer])
    f = self._mlp(layer, h)
    if self.norm_place != 0:
        f = self._rms(f, self.post_ffn_norm[layer])
    x = x + f
    return self._end_block(layer, x, controls, out)

def finish(self, x: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    logits = self._logits(self._norm(x, self.out_norm, self.out_norm_b), controls, out)
    if self.softcap > 0.0:
        logits = torch.tanh(logits / self.softcap) * self.softcap
        out["logits"] = logits
    return logits
)TS";

constexpr const char *kGpt2 = R"TS(
def embed_input(self, input_ids: Tensor, controls: Dict[str, Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    ids = input_ids.reshape(-1)
    t = ids.size(0)
    past = self._past_length(controls)
    if "positions" in controls:
        pos = controls["positions"].long()
    else:
        pos = torch.arange(past + t, device=self.tok_embd.device)
    x = torch.embedding(self.tok_embd, ids) + torch.embedding(self.pos_embd, pos.narrow(0, past, t))
    return x, torch.tensor([t, past]), torch.zeros(0)

def run_block(self, layer: int, x: Tensor, spec: Tensor, rope: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    ls = str(layer)
    t = x.size(0)
    d = self.d_model
    h = torch.layer_norm(x, [d], self.ln1_w[layer], self.ln1_b[layer], self.norm_eps)
    qkv = sinkscope.linear(h, self.w_qkv[layer], self.b_qkv[layer])
    q = qkv.narrow(1, 0, d).reshape(t, self.n_heads, self.head_dim).transpose(0, 1)
    k = qkv.narrow(1, d, d).reshape(t, self.n_heads, self.head_dim).transpose(0, 1)
    v = qkv.narrow(1, 2 * d, d).reshape(t, self.n_heads, self.head_dim).transpose(0, 1)
    k, v = self._store_cache(layer, k, v, controls, out)
    if self._captures("capture_qk", layer, controls):
        out["q." + ls] = q
        out["k." + ls] = k
    if self._fused(layer, q, controls):
        ctx = self._attend_fused(layer, q, k, v, torch.zeros(0), 0, controls, out)
    else:
        ctx = self._attend(layer, q, k, v, self._mask_of(spec, controls), controls, out)
        ctx = ctx.transpose(0, 1).reshape(t, d)
    x = x + sinkscope.linear(ctx, self.w_o[layer], self.b_o[layer])
    h = torch.layer_norm(x, [d], self.ln2_w[layer], self.ln2_b[layer], self.norm_eps)
    x = x + sinkscope.linear(torch.gelu(sinkscope.linear(h, self.w_up[layer], self.b_up[layer]), approximate="tanh"), self.w_down[layer], self.b_down[layer])
    return self._end_block(layer, x, controls, out)

def finish(self, x: Tensor, controls: Dict[str, Tensor], out: Dict[str, Tensor]) -> Tensor:
    return self._logits(torch.layer_norm(x, [self.d_model], self.out_norm_w, self.out_norm_b, self.norm_eps), controls, out)
)TS";

} // namespace

std::string torchScriptSource(Architecture arch)
{
    return std::string(kCommon) + (arch == Architecture::Gpt2 ? kGpt2 : kDecoder);
}

} // namespace sinkscope::detail
