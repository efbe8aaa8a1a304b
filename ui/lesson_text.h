// Lesson captions as Qt rich text: the Markdown a teacher writes (paragraphs, **bold**, *italic*, `code`,
// bullet and numbered lists, [links](url), `#` headings) and a LaTeX subset between $...$ (inline) and
// $$...$$ (a centred line of its own), rendered legibly without a TeX engine:
//   Greek letters (\alpha..\omega, \Gamma..\Omega), operators and relations (\sum \prod \log \exp \max
//   \min \cdot \times \le \ge \ne \approx \infty \to \in ...), x_i, x^2, x_{ij}, x^{n+1} as <sub>/<sup>,
//   \frac{a}{b} as a/b or (a)/(b), \sqrt{x} as √x or √(x), \text{..} / \mathrm{..} upright, \mathbf bold,
//   \left and \right dropped, \, \; \quad spacing. Letters are italic, digits and operators upright.
//   An unknown command is shown as its name.
// Every piece of the source text is HTML-escaped: a caption cannot inject markup. Pure functions, any
// thread.
#pragma once

#include <QString>

namespace sinkscope::ui {

struct LessonTextStyle {
    double pointSize = 0; // the body's font size; 0: the widget's own
    bool dark = false;    // code spans and links readable on a dark palette
};

// A caption (Markdown with formulas) as an HTML document for QLabel / QTextBrowser.
QString lessonTextToHtml(const QString &markdown, const LessonTextStyle &style = {});
// One formula's source (without the dollars) as an HTML fragment.
QString latexToHtml(const QString &tex);
// Markdown inline markup and formulas of one paragraph as an HTML fragment (no block structure).
QString inlineMarkdownToHtml(const QString &text, bool dark = false);

} // namespace sinkscope::ui
