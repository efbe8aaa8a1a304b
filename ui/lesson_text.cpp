#include "lesson_text.h"

#include <QHash>
#include <QRegularExpression>
#include <QStringList>

namespace sinkscope::ui {

namespace {

// Commands that stand for one symbol.
const QHash<QString, QString> &symbols()
{
    static const QHash<QString, QString> table = {
        // Greek
        {"alpha", u"α"_qs},
        {"beta", u"β"_qs},
        {"gamma", u"γ"_qs},
        {"delta", u"δ"_qs},
        {"epsilon", u"ε"_qs},
        {"varepsilon", u"ε"_qs},
        {"zeta", u"ζ"_qs},
        {"eta", u"η"_qs},
        {"theta", u"θ"_qs},
        {"vartheta", u"ϑ"_qs},
        {"iota", u"ι"_qs},
        {"kappa", u"κ"_qs},
        {"lambda", u"λ"_qs},
        {"mu", u"μ"_qs},
        {"nu", u"ν"_qs},
        {"xi", u"ξ"_qs},
        {"omicron", u"ο"_qs},
        {"pi", u"π"_qs},
        {"rho", u"ρ"_qs},
        {"sigma", u"σ"_qs},
        {"tau", u"τ"_qs},
        {"upsilon", u"υ"_qs},
        {"phi", u"φ"_qs},
        {"varphi", u"φ"_qs},
        {"chi", u"χ"_qs},
        {"psi", u"ψ"_qs},
        {"omega", u"ω"_qs},
        {"Gamma", u"Γ"_qs},
        {"Delta", u"Δ"_qs},
        {"Theta", u"Θ"_qs},
        {"Lambda", u"Λ"_qs},
        {"Xi", u"Ξ"_qs},
        {"Pi", u"Π"_qs},
        {"Sigma", u"Σ"_qs},
        {"Upsilon", u"Υ"_qs},
        {"Phi", u"Φ"_qs},
        {"Psi", u"Ψ"_qs},
        {"Omega", u"Ω"_qs},
        // big operators and relations
        {"sum", u"∑"_qs},
        {"prod", u"∏"_qs},
        {"int", u"∫"_qs},
        {"cdot", u" · "_qs},
        {"times", u" × "_qs},
        {"div", u" ÷ "_qs},
        {"pm", u" ± "_qs},
        {"le", u" ≤ "_qs},
        {"leq", u" ≤ "_qs},
        {"ge", u" ≥ "_qs},
        {"geq", u" ≥ "_qs},
        {"ne", u" ≠ "_qs},
        {"neq", u" ≠ "_qs},
        {"approx", u" ≈ "_qs},
        {"sim", u" ∼ "_qs},
        {"propto", u" ∝ "_qs},
        {"equiv", u" ≡ "_qs},
        {"ll", u" ≪ "_qs},
        {"gg", u" ≫ "_qs},
        {"infty", u"∞"_qs},
        {"to", u" → "_qs},
        {"rightarrow", u" → "_qs},
        {"leftarrow", u" ← "_qs},
        {"Rightarrow", u" ⇒ "_qs},
        {"mapsto", u" ↦ "_qs},
        {"in", u" ∈ "_qs},
        {"notin", u" ∉ "_qs},
        {"subset", u" ⊂ "_qs},
        {"forall", u"∀"_qs},
        {"exists", u"∃"_qs},
        {"partial", u"∂"_qs},
        {"nabla", u"∇"_qs},
        {"ldots", u"…"_qs},
        {"dots", u"…"_qs},
        {"cdots", u"⋯"_qs},
        {"top", u"ᵀ"_qs},
        {"mid", u" | "_qs},
        {"lvert", u"|"_qs},
        {"rvert", u"|"_qs},
        {"vert", u"|"_qs},
        {"|", u"‖"_qs},
        {"langle", u"⟨"_qs},
        {"rangle", u"⟩"_qs},
        {"lfloor", u"⌊"_qs},
        {"rfloor", u"⌋"_qs},
        {"lceil", u"⌈"_qs},
        {"rceil", u"⌉"_qs},
        {"{", u"{"_qs},
        {"}", u"}"_qs},
        {"%", u"%"_qs},
        {"_", u"_"_qs},
        {"$", u"$"_qs},
        {"#", u"#"_qs},
        {"&", u"&amp;"_qs},
        // spacing
        {",", u"\u2009"_qs},
        {":", u"\u205f"_qs},
        {";", u"\u2004"_qs},
        {" ", u" "_qs},
        {"!", QString()},
        {"quad", u"\u2003"_qs},
        {"qquad", u"\u2003\u2003"_qs},
    };
    return table;
}

// Commands shown as an upright word (function names).
bool isFunctionName(const QString &name)
{
    static const QStringList names = {"log", "exp", "max", "min", "arg", "argmax", "argmin",  "sin",  "cos",
                                      "tan", "ln",  "det", "lim", "sup", "inf",    "softmax", "mean", "median"};
    return names.contains(name);
}

QString escapeChar(QChar c)
{
    switch (c.unicode()) {
    case '<':
        return QStringLiteral("&lt;");
    case '>':
        return QStringLiteral("&gt;");
    case '&':
        return QStringLiteral("&amp;");
    case '"':
        return QStringLiteral("&quot;");
    default:
        return QString(c);
    }
}

// A recursive-descent renderer over the formula's characters.
class TexRenderer
{
public:
    explicit TexRenderer(const QString &source) : m_s(source) {}

    QString renderAll()
    {
        QString out;
        while (m_i < m_s.size()) {
            out += atom();
        }
        return out;
    }

private:
    bool atEnd() const { return m_i >= m_s.size(); }

    // The contents of a {...} group starting at m_i (which is '{'), rendered.
    QString group()
    {
        ++m_i; // '{'
        QString out;
        while (!atEnd() && m_s[m_i] != QLatin1Char('}')) {
            out += atom();
        }
        if (!atEnd()) {
            ++m_i; // '}'
        }
        return out;
    }

    // The raw text of a {...} group (for \text), without rendering.
    QString rawGroup()
    {
        if (atEnd() || m_s[m_i] != QLatin1Char('{')) {
            return {};
        }
        int depth = 0;
        const qsizetype start = m_i + 1;
        for (; m_i < m_s.size(); ++m_i) {
            if (m_s[m_i] == QLatin1Char('{')) {
                ++depth;
            } else if (m_s[m_i] == QLatin1Char('}') && --depth == 0) {
                return m_s.mid(start, m_i++ - start);
            }
        }
        return m_s.mid(start);
    }

    // One argument: a group, a command or one character. `simple` tells whether it is a single symbol.
    QString argument(bool *simple = nullptr)
    {
        while (!atEnd() && m_s[m_i] == QLatin1Char(' ')) {
            ++m_i;
        }
        if (atEnd()) {
            return {};
        }
        const qsizetype start = m_i;
        const bool isGroup = m_s[m_i] == QLatin1Char('{');
        QString out = isGroup ? group() : atom();
        if (simple) {
            const QString raw = m_s.mid(start, m_i - start);
            static const QRegularExpression single(QStringLiteral("^\\{?\\s*(\\\\?[A-Za-z]+|[0-9.]+|.)\\s*\\}?$"));
            *simple = single.match(raw).hasMatch() && !raw.contains(QLatin1String("\\frac"));
        }
        return out;
    }

    QString command()
    {
        ++m_i; // '\'
        if (atEnd()) {
            return {};
        }
        QString name;
        if (m_s[m_i].isLetter()) {
            while (!atEnd() && m_s[m_i].isLetter()) {
                name += m_s[m_i++];
            }
        } else {
            name = m_s[m_i++];
        }
        if (name == QLatin1String("left") || name == QLatin1String("right") || name == QLatin1String("big") ||
            name == QLatin1String("Big") || name == QLatin1String("bigl") || name == QLatin1String("bigr")) {
            if (!atEnd() && m_s[m_i] == QLatin1Char('.')) {
                ++m_i; // \left. : no delimiter
            }
            return {};
        }
        if (name == QLatin1String("frac") || name == QLatin1String("dfrac") || name == QLatin1String("tfrac")) {
            bool simpleTop = false, simpleBottom = false;
            const QString top = argument(&simpleTop);
            const QString bottom = argument(&simpleBottom);
            auto wrap = [](const QString &s, bool simple) { return simple ? s : QStringLiteral("(") + s + ")"; };
            return wrap(top, simpleTop) + QStringLiteral("/") + wrap(bottom, simpleBottom);
        }
        if (name == QLatin1String("sqrt")) {
            bool simple = false;
            const QString body = argument(&simple);
            return QStringLiteral("√") + (simple ? body : QStringLiteral("(") + body + ")");
        }
        if (name == QLatin1String("text") || name == QLatin1String("mathrm") || name == QLatin1String("operatorname") ||
            name == QLatin1String("textrm")) {
            QString out;
            for (QChar c : rawGroup()) {
                out += escapeChar(c);
            }
            return QStringLiteral("<span style=\"font-style:normal\">") + out + "</span>";
        }
        if (name == QLatin1String("mathbf") || name == QLatin1String("boldsymbol") || name == QLatin1String("textbf")) {
            return QStringLiteral("<b>") + argument() + "</b>";
        }
        if (name == QLatin1String("mathit") || name == QLatin1String("textit") || name == QLatin1String("mathcal") ||
            name == QLatin1String("mathbb")) {
            return argument();
        }
        if (name == QLatin1String("hat") || name == QLatin1String("bar") || name == QLatin1String("tilde") ||
            name == QLatin1String("vec")) {
            // A combining mark after a single symbol; spelled out after anything longer.
            bool simple = false;
            const QString body = argument(&simple);
            const QString mark = name == QLatin1String("hat")     ? QStringLiteral("\u0302")
                                 : name == QLatin1String("bar")   ? QStringLiteral("\u0304")
                                 : name == QLatin1String("tilde") ? QStringLiteral("\u0303")
                                                                  : QStringLiteral("\u20d7");
            return simple ? body + mark : QStringLiteral("(") + body + ")" + mark;
        }
        if (name == QLatin1String("sum") || name == QLatin1String("prod") || name == QLatin1String("int")) {
            // A big operator takes its limits, then stands apart from its operand.
            QString out = QStringLiteral(" ") + symbols().value(name);
            while (!atEnd() && (m_s[m_i] == QLatin1Char('_') || m_s[m_i] == QLatin1Char('^'))) {
                out += atom();
            }
            return out + QStringLiteral(" ");
        }
        if (isFunctionName(name)) {
            return QStringLiteral("<span style=\"font-style:normal\">") + name + "</span> ";
        }
        const auto it = symbols().find(name);
        if (it != symbols().end()) {
            return *it;
        }
        return QStringLiteral("<span style=\"font-style:normal\">") + name + "</span>";
    }

    QString atom()
    {
        const QChar c = m_s[m_i];
        if (c == QLatin1Char('\\')) {
            return command();
        }
        if (c == QLatin1Char('{')) {
            return group();
        }
        if (c == QLatin1Char('}')) {
            ++m_i; // stray
            return {};
        }
        if (c == QLatin1Char('^') || c == QLatin1Char('_')) {
            ++m_i;
            const QString body = argument();
            return c == QLatin1Char('^') ? QStringLiteral("<sup>") + body + "</sup>"
                                         : QStringLiteral("<sub>") + body + "</sub>";
        }
        ++m_i;
        if (c.isSpace()) {
            return {}; // TeX ignores spaces in formulas: spacing comes from the operators and \, \;
        }
        if (c.isLetter()) {
            return QStringLiteral("<i>") + c + "</i>";
        }
        if (c == QLatin1Char('=') || c == QLatin1Char('+') || c == QLatin1Char('<') || c == QLatin1Char('>')) {
            return QStringLiteral(" ") + escapeChar(c) + " ";
        }
        if (c == QLatin1Char(',') || c == QLatin1Char(';')) {
            return QString(c) + QStringLiteral(" ");
        }
        if (c == QLatin1Char('-')) {
            return QStringLiteral(" \u2212 ");
        }
        if (c == QLatin1Char('~')) {
            return QStringLiteral("\u00a0");
        }
        if (c == QLatin1Char('\'')) {
            return QStringLiteral("\u2032");
        }
        return escapeChar(c);
    }

    const QString &m_s;
    qsizetype m_i = 0;
};

QString tidySpaces(QString html)
{
    // Binary operators add spaces around themselves; a leading unary minus or doubled spaces look odd.
    static const QRegularExpression doubled(QStringLiteral(" {2,}"));
    html.replace(doubled, QStringLiteral(" "));
    html.replace(QStringLiteral("( "), QStringLiteral("("));
    html.replace(QStringLiteral(" )"), QStringLiteral(")"));
    return html.trimmed();
}

QString formulaSpan(const QString &tex, bool display)
{
    const QString body = QStringLiteral("<span style=\"font-family:'DejaVu Serif','Latin Modern Math',serif\">") +
                         latexToHtml(tex) + "</span>";
    return display ? QStringLiteral("<br/><span>&nbsp;&nbsp;&nbsp;&nbsp;") + body + "</span><br/>" : body;
}

// The index of the closing `marker` at or after `from`, skipping backslash escapes; -1 when none.
qsizetype findClosing(const QString &text, qsizetype from, const QString &marker)
{
    for (qsizetype i = from; i + marker.size() <= text.size(); ++i) {
        if (text[i] == QLatin1Char('\\')) {
            ++i;
            continue;
        }
        if (text.mid(i, marker.size()) == marker) {
            return i;
        }
    }
    return -1;
}

struct Block {
    enum Kind { Paragraph, Bullet, Numbered, Heading, Display } kind = Paragraph;
    QStringList lines;
    int level = 0; // heading level
};

QList<Block> splitBlocks(const QString &markdown)
{
    static const QRegularExpression bullet(QStringLiteral("^\\s*[-*+]\\s+(.*)$"));
    static const QRegularExpression numbered(QStringLiteral("^\\s*\\d+[.)]\\s+(.*)$"));
    static const QRegularExpression heading(QStringLiteral("^(#{1,6})\\s+(.*)$"));
    QList<Block> blocks;
    Block current;
    auto flush = [&] {
        if (!current.lines.isEmpty()) {
            blocks << current;
        }
        current = Block{};
    };
    const QStringList lines = markdown.split(QLatin1Char('\n'));
    for (qsizetype n = 0; n < lines.size(); ++n) {
        const QString line = lines[n];
        const QString trimmed = line.trimmed();
        if (trimmed.isEmpty()) {
            flush();
            continue;
        }
        if (trimmed.startsWith(QLatin1String("$$")) && current.lines.isEmpty()) {
            // A display formula block, possibly over several lines.
            QString tex = trimmed.mid(2);
            while (!tex.contains(QLatin1String("$$")) && n + 1 < lines.size()) {
                tex += QLatin1Char(' ') + lines[++n].trimmed();
            }
            const qsizetype end = tex.indexOf(QLatin1String("$$"));
            blocks << Block{Block::Display, {end < 0 ? tex : tex.left(end)}, 0};
            continue;
        }
        if (const auto m = heading.match(trimmed); m.hasMatch()) {
            flush();
            blocks << Block{Block::Heading, {m.captured(2)}, int(m.capturedLength(1))};
            continue;
        }
        const auto b = bullet.match(line);
        const auto d = numbered.match(line);
        if (b.hasMatch() || d.hasMatch()) {
            const Block::Kind kind = b.hasMatch() ? Block::Bullet : Block::Numbered;
            if (current.kind != kind) {
                flush();
                current.kind = kind;
            }
            current.lines << (b.hasMatch() ? b.captured(1) : d.captured(1));
            continue;
        }
        if ((current.kind == Block::Bullet || current.kind == Block::Numbered) && line.startsWith(QLatin1Char(' '))) {
            current.lines.last() += QLatin1Char(' ') + trimmed; // a list item's continuation
            continue;
        }
        if (current.kind != Block::Paragraph) {
            flush();
        }
        current.lines << trimmed;
    }
    flush();
    return blocks;
}

} // namespace

QString latexToHtml(const QString &tex)
{
    return tidySpaces(TexRenderer(tex).renderAll());
}

QString inlineMarkdownToHtml(const QString &text, bool dark)
{
    QString out;
    bool bold = false, italic = false;
    const QString codeStyle = dark ? QStringLiteral("background-color:#3a3f46;color:#f0f0f0")
                                   : QStringLiteral("background-color:#eceff1;color:#202020");
    for (qsizetype i = 0; i < text.size();) {
        const QChar c = text[i];
        if (c == QLatin1Char('\\') && i + 1 < text.size() && text[i + 1].isPunct()) {
            out += escapeChar(text[i + 1]);
            i += 2;
            continue;
        }
        if (c == QLatin1Char('`')) {
            const qsizetype end = text.indexOf(QLatin1Char('`'), i + 1);
            if (end > i) {
                QString code;
                for (QChar k : text.mid(i + 1, end - i - 1)) {
                    code += escapeChar(k);
                }
                out += QStringLiteral("<code style=\"%1\">%2</code>").arg(codeStyle, code);
                i = end + 1;
                continue;
            }
        }
        if (c == QLatin1Char('$')) {
            const bool display = text.mid(i, 2) == QLatin1String("$$");
            const QString marker = display ? QStringLiteral("$$") : QStringLiteral("$");
            const qsizetype end = findClosing(text, i + marker.size(), marker);
            if (end > i) {
                out += formulaSpan(text.mid(i + marker.size(), end - i - marker.size()), display);
                i = end + marker.size();
                continue;
            }
        }
        if (c == QLatin1Char('[')) {
            static const QRegularExpression link(QStringLiteral("\\G\\[([^\\]]*)\\]\\(([^)\\s]*)\\)"));
            const auto m = link.match(text, i);
            // Lesson files come from anyone: only web and mail links are clickable (a file: or custom scheme
            // link would open whatever handles it); others stay text.
            static const QRegularExpression safe(QStringLiteral("^(https?://|mailto:)"),
                                                 QRegularExpression::CaseInsensitiveOption);
            if (m.hasMatch() && !safe.match(m.captured(2)).hasMatch()) {
                out += inlineMarkdownToHtml(m.captured(1), dark);
                for (QChar k : QStringLiteral(" (%1)").arg(m.captured(2))) {
                    out += escapeChar(k);
                }
                i += m.capturedLength(0);
                continue;
            }
            if (m.hasMatch()) {
                QString href;
                for (QChar k : m.captured(2)) {
                    href += escapeChar(k);
                }
                out += QStringLiteral("<a href=\"%1\"%2>%3</a>")
                           .arg(href, dark ? QStringLiteral(" style=\"color:#8ab4f8\"") : QString(),
                                inlineMarkdownToHtml(m.captured(1), dark));
                i += m.capturedLength(0);
                continue;
            }
        }
        if (text.mid(i, 2) == QLatin1String("**") || text.mid(i, 2) == QLatin1String("__")) {
            out += bold ? QStringLiteral("</b>") : QStringLiteral("<b>");
            bold = !bold;
            i += 2;
            continue;
        }
        if (c == QLatin1Char('*') || c == QLatin1Char('_')) {
            // '_' only at word edges, so snake_case names stay as written.
            const bool edge =
                c == QLatin1Char('*') || (italic ? (i + 1 >= text.size() || !text[i + 1].isLetterOrNumber())
                                                 : (i == 0 || !text[i - 1].isLetterOrNumber()));
            const bool opens = !italic && i + 1 < text.size() && !text[i + 1].isSpace();
            if (edge && (italic || opens)) {
                out += italic ? QStringLiteral("</i>") : QStringLiteral("<i>");
                italic = !italic;
                ++i;
                continue;
            }
        }
        out += escapeChar(c);
        ++i;
    }
    if (italic) {
        out += QStringLiteral("</i>");
    }
    if (bold) {
        out += QStringLiteral("</b>");
    }
    return out;
}

QString lessonTextToHtml(const QString &markdown, const LessonTextStyle &style)
{
    QString body;
    for (const Block &b : splitBlocks(markdown)) {
        switch (b.kind) {
        case Block::Paragraph:
            body += QStringLiteral("<p>") + inlineMarkdownToHtml(b.lines.join(QLatin1Char(' ')), style.dark) + "</p>";
            break;
        case Block::Heading:
            body += QStringLiteral("<p style=\"font-size:%1%\"><b>%2</b></p>")
                        .arg(b.level <= 1   ? 140
                             : b.level == 2 ? 125
                                            : 110)
                        .arg(inlineMarkdownToHtml(b.lines.first(), style.dark));
            break;
        case Block::Display:
            body += QStringLiteral("<p align=\"center\">") + formulaSpan(b.lines.first(), false) + "</p>";
            break;
        case Block::Bullet:
        case Block::Numbered: {
            const QString tag = b.kind == Block::Bullet ? QStringLiteral("ul") : QStringLiteral("ol");
            body += QLatin1Char('<') + tag + QLatin1Char('>');
            for (const QString &item : b.lines) {
                body += QStringLiteral("<li>") + inlineMarkdownToHtml(item, style.dark) + "</li>";
            }
            body += QStringLiteral("</") + tag + QLatin1Char('>');
            break;
        }
        }
    }
    const QString size =
        style.pointSize > 0 ? QStringLiteral(" style=\"font-size:%1pt\"").arg(style.pointSize) : QString();
    return QStringLiteral("<html><body%1>%2</body></html>").arg(size, body);
}

} // namespace sinkscope::ui
