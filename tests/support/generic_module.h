// A generic TorchScript "model" in the shape of a traced Hugging Face model, for the suites that link
// LibTorch (core_tests, ui_tests): forward(ids [1, T]) returns (logits [1, T, V],
// (attn_layer0 [1, H, T, T], attn_layer1 [1, H, T, T])), H = 2, V = 7.
#pragma once

#include <torch/script.h>

#include <string>

namespace sinkscope::testing {

inline void writeGenericModule(const std::string &path)
{
    torch::jit::Module m("TinyGeneric");
    m.register_parameter("emb", torch::linspace(-1, 1, 7 * 4).view({7, 4}), false);
    m.define(R"(
def forward(self, input_ids: Tensor) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
    x = torch.embedding(self.emb, input_ids)
    logits = torch.matmul(x, self.emb.t())
    t = input_ids.size(1)
    scores = torch.matmul(x, x.transpose(1, 2)).unsqueeze(1).repeat(1, 2, 1, 1)
    mask = torch.ones(t, t).triu(1) > 0.5
    a0 = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    a1 = torch.softmax((scores * 2.0).masked_fill(mask, float("-inf")), dim=-1)
    return logits, (a0, a1)
)");
    m.save(path);
}

} // namespace sinkscope::testing
