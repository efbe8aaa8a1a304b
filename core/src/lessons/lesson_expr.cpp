// The expression language of lesson checks and caption placeholders (lesson_live.h): a small
// recursive-descent parser over one line of text. Errors quote the expression and say what was expected.
#include "lesson_internal.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

namespace sinkscope::lessons {
namespace {

const std::set<std::string> kMetricFunctions = {"share", "mean", "min", "max", "median", "value", "first_layer"};
const std::set<std::string> kTextFunctions = {"ppl", "kl", "same_top1", "probe_accuracy", "stream_ppl", "lookback"};
const std::set<std::string> kNames = {"sink_fraction", "massive_layer", "tokens", "layers", "heads"};

class Parser
{
public:
    explicit Parser(std::string text) : m_text(std::move(text)) {}

    Result<std::shared_ptr<const Expression>> parse(bool check)
    {
        try {
            auto e = check ? parseLogic() : parseSum();
            skipSpace();
            if (m_pos < m_text.size()) {
                fail("unexpected '" + m_text.substr(m_pos, 12) + "'");
            }
            if (check && e->kind != Expression::Kind::Compare && e->kind != Expression::Kind::Logic) {
                fail("a check needs a comparison (<, <=, >, >=, ==, !=)");
            }
            if (!check && (e->kind == Expression::Kind::Compare || e->kind == Expression::Kind::Logic)) {
                fail("a live number is a value, not a comparison");
            }
            return std::shared_ptr<const Expression>(std::move(e));
        } catch (const std::string &why) {
            return makeError(ErrorCode::InvalidArgument, "'" + m_text + "': " + why);
        }
    }

private:
    using Node = std::shared_ptr<Expression>;

    [[noreturn]] void fail(const std::string &why) const
    {
        throw why + (m_pos < m_text.size() ? " (at column " + std::to_string(m_pos + 1) + ")" : " (at the end)");
    }

    void skipSpace()
    {
        while (m_pos < m_text.size() && std::isspace(static_cast<unsigned char>(m_text[m_pos]))) {
            ++m_pos;
        }
    }
    bool accept(const std::string &token)
    {
        skipSpace();
        if (m_text.compare(m_pos, token.size(), token) != 0) {
            return false;
        }
        // Words must end there ("and" is not the start of "android").
        const bool word = std::isalpha(static_cast<unsigned char>(token.back()));
        const size_t end = m_pos + token.size();
        if (word && end < m_text.size() &&
            (std::isalnum(static_cast<unsigned char>(m_text[end])) || m_text[end] == '_')) {
            return false;
        }
        m_pos = end;
        return true;
    }
    void expect(const std::string &token)
    {
        if (!accept(token)) {
            fail("expected '" + token + "'");
        }
    }
    std::string identifier()
    {
        skipSpace();
        const size_t start = m_pos;
        while (m_pos < m_text.size() &&
               (std::isalnum(static_cast<unsigned char>(m_text[m_pos])) || m_text[m_pos] == '_')) {
            ++m_pos;
        }
        if (m_pos == start || std::isdigit(static_cast<unsigned char>(m_text[start]))) {
            m_pos = start;
            fail("expected a name");
        }
        return m_text.substr(start, m_pos - start);
    }
    std::optional<double> number()
    {
        skipSpace();
        const char *begin = m_text.c_str() + m_pos;
        if (m_pos >= m_text.size() || !(std::isdigit(static_cast<unsigned char>(*begin)) || *begin == '.')) {
            return std::nullopt;
        }
        // Not "2..5": a number followed by ".." is the integer before it.
        size_t end = m_pos;
        while (end < m_text.size() && std::isdigit(static_cast<unsigned char>(m_text[end]))) {
            ++end;
        }
        if (end + 1 < m_text.size() && m_text[end] == '.' && m_text[end + 1] == '.') {
            const double v = std::strtod(m_text.substr(m_pos, end - m_pos).c_str(), nullptr);
            m_pos = end;
            return v;
        }
        char *stop = nullptr;
        const double v = std::strtod(begin, &stop);
        if (stop == begin || !std::isfinite(v)) {
            fail("bad number");
        }
        m_pos += size_t(stop - begin);
        if (m_pos < m_text.size() && m_text[m_pos] == '%') {
            ++m_pos;
            return v / 100.0;
        }
        return v;
    }
    double requireNumber()
    {
        bool negative = accept("-");
        auto v = number();
        if (!v) {
            fail("expected a number");
        }
        return negative ? -*v : *v;
    }
    int64_t integer()
    {
        const size_t at = m_pos;
        const double v = requireNumber();
        if (v < 0 || v != std::floor(v) || v > 1e6) {
            m_pos = at;
            fail("expected a layer or head number (0, 1, 2, ...)");
        }
        return int64_t(v);
    }
    std::string comparison()
    {
        for (const char *op : {"<=", ">=", "==", "!=", "<", ">"}) {
            if (accept(op)) {
                return op;
            }
        }
        fail("expected a comparison (<, <=, >, >=, ==, !=)");
    }

    Node parseLogic()
    {
        Node left = parseComparison();
        for (;;) {
            std::string op;
            if (accept("and")) {
                op = "and";
            } else if (accept("or")) {
                op = "or";
            } else {
                return left;
            }
            auto node = std::make_shared<Expression>();
            node->kind = Expression::Kind::Logic;
            node->op = op;
            node->args = {left, parseComparison()};
            left = node;
        }
    }
    Node parseComparison()
    {
        const size_t start = m_pos;
        Node left = parseSum();
        skipSpace();
        auto node = std::make_shared<Expression>();
        node->kind = Expression::Kind::Compare;
        node->op = comparison();
        node->args = {left, parseSum()};
        node->text = trimmed(m_text.substr(start, m_pos - start));
        return node;
    }
    Node parseSum()
    {
        const size_t start = m_pos;
        Node left = parseTerm();
        for (;;) {
            std::string op;
            if (accept("+")) {
                op = "+";
            } else if (accept("-")) {
                op = "-";
            } else {
                return left;
            }
            auto node = std::make_shared<Expression>();
            node->kind = Expression::Kind::Binary;
            node->op = op;
            node->args = {left, parseTerm()};
            node->text = trimmed(m_text.substr(start, m_pos - start));
            left = node;
        }
    }
    Node parseTerm()
    {
        const size_t start = m_pos;
        Node left = parseFactor();
        for (;;) {
            std::string op;
            if (accept("*")) {
                op = "*";
            } else if (accept("/")) {
                op = "/";
            } else {
                return left;
            }
            auto node = std::make_shared<Expression>();
            node->kind = Expression::Kind::Binary;
            node->op = op;
            node->args = {left, parseFactor()};
            node->text = trimmed(m_text.substr(start, m_pos - start));
            left = node;
        }
    }
    Node parseFactor()
    {
        const size_t start = m_pos;
        auto node = std::make_shared<Expression>();
        if (accept("(")) {
            Node inner = parseSum();
            expect(")");
            return inner;
        }
        if (accept("-")) {
            node->kind = Expression::Kind::Negate;
            node->args = {parseFactor()};
        } else if (auto v = number()) {
            node->kind = Expression::Kind::Number;
            node->number = *v;
        } else {
            parseQuantity(*node);
        }
        node->text = trimmed(m_text.substr(start, m_pos - start));
        return node;
    }
    void parseLayers(Expression &node)
    {
        if (accept("layers")) {
            if (accept("..")) {
                node.to = integer();
                return;
            }
            node.from = integer();
            expect("..");
            skipSpace();
            if (m_pos < m_text.size() && std::isdigit(static_cast<unsigned char>(m_text[m_pos]))) {
                node.to = integer();
                if (*node.to < *node.from) {
                    fail("the layer range ends before it starts");
                }
            }
        } else if (accept("layer")) {
            node.from = integer();
            node.to = node.from;
        } else {
            fail("expected 'layers A..B' or 'layer A'");
        }
    }
    void parseQuantity(Expression &node)
    {
        node.kind = Expression::Kind::Quantity;
        node.name = identifier();
        if (kNames.count(node.name)) {
            return;
        }
        if (node.name == "abs") {
            expect("(");
            node.args = {parseSum()};
            expect(")");
            return;
        }
        if (node.name == "activation_ratio") {
            expect("(");
            node.ints = {integer()};
            expect(")");
            return;
        }
        if (kTextFunctions.count(node.name)) {
            expect("(");
            const size_t start = m_pos;
            int depth = 1;
            while (m_pos < m_text.size() && depth > 0) {
                depth += m_text[m_pos] == '(' ? 1 : m_text[m_pos] == ')' ? -1 : 0;
                ++m_pos;
            }
            if (depth > 0) {
                fail("expected ')'");
            }
            node.argument = trimmed(m_text.substr(start, m_pos - 1 - start));
            if (node.argument.empty()) {
                fail(node.name + "() needs an argument");
            }
            checkTextArgument(node);
            return;
        }
        if (!kMetricFunctions.count(node.name)) {
            fail("unknown quantity '" + node.name +
                 "' (see docs/lessons.md: share, mean, min, max, median, value, "
                 "first_layer, sink_fraction, activation_ratio, massive_layer, tokens, layers, heads, ppl, kl, "
                 "same_top1, stream_ppl, probe_accuracy, lookback, abs)");
        }
        expect("(");
        node.metric = identifier();
        if (node.name == "share" || node.name == "first_layer") {
            node.cmp = comparison();
            node.threshold = requireNumber();
        }
        if (node.name == "value") {
            expect(",");
            const int64_t layer = integer();
            expect(",");
            node.ints = {layer, integer()};
        } else if (node.name != "first_layer" && accept(",")) {
            parseLayers(node);
        }
        expect(")");
    }
    void checkTextArgument(const Expression &node)
    {
        const std::string &a = node.argument;
        if (node.name == "lookback" && a != "correct" && a != "wrong" && a != "all") {
            fail("lookback() takes correct, wrong or all");
        }
        if (node.name == "stream_ppl") {
            int s = 0, w = 0;
            if (a != "dense" && std::sscanf(a.c_str(), "window %d", &w) != 1 &&
                std::sscanf(a.c_str(), "sinks %d+%d", &s, &w) != 2) {
                fail("stream_ppl() takes dense, window N or sinks S+W");
            }
        }
    }
    static std::string trimmed(const std::string &s)
    {
        const size_t b = s.find_first_not_of(" \t");
        const size_t e = s.find_last_not_of(" \t");
        return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
    }

    std::string m_text;
    size_t m_pos = 0;
};

void collect(const Expression &e, std::vector<std::string> *metrics, std::vector<int64_t> *layers)
{
    if (!e.metric.empty() && metrics) {
        metrics->push_back(e.metric);
    }
    if (layers) {
        if (e.from) {
            layers->push_back(*e.from);
        }
        if (e.to) {
            layers->push_back(*e.to);
        }
        if ((e.name == "value" || e.name == "activation_ratio") && !e.ints.empty()) {
            layers->push_back(e.ints[0]);
        }
    }
    for (const auto &a : e.args) {
        collect(*a, metrics, layers);
    }
}

} // namespace

bool compareValues(double left, const std::string &op, double right)
{
    if (op == "<") {
        return left < right;
    }
    if (op == "<=") {
        return left <= right;
    }
    if (op == ">") {
        return left > right;
    }
    if (op == ">=") {
        return left >= right;
    }
    if (op == "==") {
        return left == right;
    }
    return left != right;
}

Result<std::shared_ptr<const Expression>> parseCheck(const std::string &text)
{
    return Parser(text).parse(true);
}

Result<std::shared_ptr<const Expression>> parseValue(const std::string &text)
{
    return Parser(text).parse(false);
}

std::vector<std::string> expressionMetrics(const Expression &expression)
{
    std::vector<std::string> out;
    collect(expression, &out, nullptr);
    return out;
}

std::vector<int64_t> expressionLayers(const Expression &expression)
{
    std::vector<int64_t> out;
    collect(expression, nullptr, &out);
    return out;
}

Result<std::vector<Placeholder>> findPlaceholders(const std::string &caption)
{
    std::vector<Placeholder> out;
    size_t pos = 0;
    while ((pos = caption.find("{{", pos)) != std::string::npos) {
        const size_t close = caption.find("}}", pos + 2);
        if (close == std::string::npos) {
            return makeError(ErrorCode::InvalidArgument,
                             "unclosed live number '" + caption.substr(pos, 40) + "' (write {{expression}})");
        }
        Placeholder p;
        p.begin = pos;
        p.end = close + 2;
        std::string inner = caption.substr(pos + 2, close - pos - 2);
        if (const size_t bar = inner.rfind('|'); bar != std::string::npos) {
            p.format = inner.substr(bar + 1);
            inner = inner.substr(0, bar);
            p.format.erase(0, p.format.find_first_not_of(" \t"));
            p.format.erase(p.format.find_last_not_of(" \t") + 1);
            const bool decimals =
                p.format.size() == 2 && p.format[0] == '.' && p.format[1] >= '0' && p.format[1] <= '6';
            if (p.format != "%" && !decimals) {
                return makeError(ErrorCode::InvalidArgument, "live number '{{" +
                                                                 caption.substr(pos + 2, close - pos - 2) +
                                                                 "}}': format '" + p.format + "' is not % or .0 to .6");
            }
        }
        inner.erase(0, inner.find_first_not_of(" \t"));
        inner.erase(inner.find_last_not_of(" \t") + 1);
        p.expression = inner;
        out.push_back(std::move(p));
        pos = close + 2;
    }
    return out;
}

const char *checkStatusName(CheckStatus status)
{
    switch (status) {
    case CheckStatus::Confirmed:
        return "confirmed";
    case CheckStatus::NotConfirmed:
        return "not confirmed";
    case CheckStatus::Unavailable:
        break;
    }
    return "unavailable";
}

} // namespace sinkscope::lessons
