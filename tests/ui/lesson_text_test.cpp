// Lesson captions as rich text: Markdown blocks and inline markup, the LaTeX subset, escaping, font size.
#include "lesson_text.h"

#include <QTextDocument>

#include <gtest/gtest.h>

using namespace sinkscope::ui;

namespace {

std::string html(const QString &markdown, const LessonTextStyle &style = {})
{
    return lessonTextToHtml(markdown, style).toStdString();
}

std::string tex(const char *source)
{
    return latexToHtml(QString::fromUtf8(source)).toStdString();
}

// What a reader sees (tags dropped), for formulas.
std::string plain(const char *source)
{
    QTextDocument doc;
    doc.setHtml(latexToHtml(QString::fromUtf8(source)));
    return doc.toPlainText().toStdString();
}

} // namespace

TEST(LessonText, ParagraphsAndInlineMarkup)
{
    const std::string h = html(QStringLiteral("First **bold** and *italic* and `first_token_mass`.\n\nSecond "
                                              "paragraph\ncontinues, with [a link](https://example.org/x)."));
    EXPECT_NE(h.find("<p>First <b>bold</b> and <i>italic</i> and <code"), std::string::npos) << h;
    EXPECT_NE(h.find(">first_token_mass</code>"), std::string::npos) << h;
    EXPECT_NE(h.find("<p>Second paragraph continues, with <a href=\"https://example.org/x\">a link</a>.</p>"),
              std::string::npos)
        << h;
    // snake_case words are not italics.
    EXPECT_EQ(html(QStringLiteral("row_entropy_norm")).find("<i>"), std::string::npos);
    // A lesson from anyone opens web and mail links only: a file or custom-scheme link stays text.
    const std::string local = html(QStringLiteral("See [the notes](file:///etc/passwd) and [mail](mailto:a@b.c)."));
    EXPECT_EQ(local.find("href=\"file:"), std::string::npos) << local;
    EXPECT_NE(local.find("the notes (file:///etc/passwd)"), std::string::npos) << local;
    EXPECT_NE(local.find("href=\"mailto:a@b.c\""), std::string::npos) << local;
}

TEST(LessonText, BulletAndNumberedLists)
{
    const std::string h = html(QStringLiteral("Intro:\n- one\n- **two**\n  continued\n\n1. first\n2. second"));
    EXPECT_NE(h.find("<p>Intro:</p><ul><li>one</li><li><b>two</b> continued</li></ul>"), std::string::npos) << h;
    EXPECT_NE(h.find("<ol><li>first</li><li>second</li></ol>"), std::string::npos) << h;
}

TEST(LessonText, EscapesHtmlEverywhere)
{
    const std::string h = html(QStringLiteral("<script>x</script> & `<b>` and $a < b$"));
    EXPECT_EQ(h.find("<script>"), std::string::npos) << h;
    EXPECT_NE(h.find("&lt;script&gt;x&lt;/script&gt; &amp; "), std::string::npos) << h;
    EXPECT_NE(h.find("&lt;b&gt;</code>"), std::string::npos) << h;
    EXPECT_NE(h.find(" &lt; "), std::string::npos) << h;
    EXPECT_EQ(html(QStringLiteral("[x](javascript:\"><b>)")).find("\"><b>"), std::string::npos);
}

TEST(LessonText, GreekOperatorsAndScripts)
{
    EXPECT_EQ(plain(R"(\alpha_1 \le \beta^{2} \cdot \Omega)"), "α1 ≤ β2 · Ω");
    EXPECT_EQ(tex("x_i"), "<i>x</i><sub><i>i</i></sub>");
    EXPECT_EQ(tex("e^{n+1}"), "<i>e</i><sup><i>n</i> + 1</sup>");
    EXPECT_EQ(plain(R"(\sum_{j} a_{ij} \approx \infty \to 0, j \in S, x \ne y, \max \log \exp \min)"),
              "∑j aij ≈ ∞ → 0, j ∈ S, x ≠ y, max log exp min");
    EXPECT_NE(tex(R"(a\,b\;c\quad d)").find("\u2009<i>b</i>\u2004<i>c</i>\u2003"), std::string::npos)
        << tex(R"(a\,b\;c\quad d)");
    EXPECT_NE(tex(R"(\log)").find("font-style:normal\">log"), std::string::npos);
    EXPECT_EQ(plain(R"(a \times b \ge c \prod)"), "a × b ≥ c ∏");
}

TEST(LessonText, FractionsRootsTextAndDelimiters)
{
    EXPECT_EQ(plain(R"(\frac{a}{b})"), "a/b");
    EXPECT_EQ(plain(R"(\frac{e^{s_j}}{\sum_k e^{s_k}})"), "(esj)/(∑k esk)");
    EXPECT_EQ(plain(R"(\sqrt{d})"), "√d");
    EXPECT_EQ(plain(R"(\sqrt{d_k + 1})"), "√(dk + 1)");
    EXPECT_EQ(plain(R"(\text{Sink}_1^{\epsilon})"), "Sink1ε");
    EXPECT_NE(tex(R"(\text{a<b})").find("a&lt;b"), std::string::npos);
    EXPECT_EQ(plain(R"(\left( \frac{1}{T} \right) \mathrm{softmax}(x))"), "(1/T)softmax(x)");
    EXPECT_EQ(plain(R"(\unknowncommand)"), "unknowncommand");
    EXPECT_EQ(plain(R"(x_)"), "x"); // a dangling script reads as nothing, not a crash
}

TEST(LessonText, DisplayFormulasAndFontSize)
{
    const std::string h = html(QStringLiteral("Before.\n\n$$\\alpha =\n \\frac{1}{2}$$\n\nAfter $$x$$ inline."),
                               LessonTextStyle{24, true});
    EXPECT_NE(h.find("<body style=\"font-size:24pt\">"), std::string::npos) << h;
    EXPECT_NE(h.find("<p align=\"center\">"), std::string::npos) << h;
    EXPECT_NE(h.find("α"), std::string::npos) << h;
    EXPECT_NE(h.find("1/2"), std::string::npos) << h;
    EXPECT_NE(h.find("<br/>"), std::string::npos) << h; // $$..$$ inside a paragraph gets its own line
    EXPECT_EQ(html(QStringLiteral("x")).find("font-size"), std::string::npos);
    // A lone dollar is text.
    EXPECT_NE(html(QStringLiteral("costs $5 only")).find("costs $5 only"), std::string::npos);
}
