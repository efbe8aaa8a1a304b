// The models the window offers in its Models menu: the default SmolLM2 and, when tools/setup.sh installed
// it, Gemma 3 270M, whose use is governed by the Gemma Terms of Use (shown, and accepted once, before
// the first load). Widget-free, so tests check the entries without a window.
#pragma once

#include <QString>

#include <vector>

class QSettings;

namespace sinkscope::ui {

struct CatalogEntry {
    QString id;    // "smollm2", "gemma3"
    QString title; // the menu text
    QString path;  // what openModel() takes ("" = the default model); empty for a missing model
    bool available = false;
    QString toolTip;   // where it comes from, or how to install it
    QString termsPath; // HTML terms the user must accept before the first load; empty when none
};

// The entries in menu order. Reads gemma3GgufPath() (SINKSCOPE_GEMMA3_GGUF, else the data folders) now;
// a path that names no file counts as not installed.
std::vector<CatalogEntry> modelCatalog();

// Whether the Gemma Terms of Use were accepted, remembered in the settings under kGemmaTermsKey.
inline constexpr char kGemmaTermsKey[] = "gemmaTermsAccepted";
bool gemmaTermsAccepted(const QSettings &settings);
void setGemmaTermsAccepted(QSettings &settings, bool accepted);

// The terms document as HTML (the file next to the GGUF; of a saved web page, its <article> only), or a
// short HTML note naming the missing file.
QString readTermsHtml(const QString &path);

} // namespace sinkscope::ui
