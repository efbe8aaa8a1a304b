// Lesson files (docs/lessons.md) on arbitrary bytes: the line format, fields, values, the mitigation
// specs and the check and placeholder expressions they hold. A lesson that parses is written back with
// formatLesson and must parse again to the same text (lesson.h promises the round trip).
#include "fuzz_support.h"

#include "sinkscope/lessons/lesson.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    auto lesson = lessons::parseLesson(text, "lesson.txt");
    if (!lesson) {
        fuzz::checkNamesFile(lesson.error().message, "lesson.txt");
        return 0;
    }
    for (size_t i = 0; i < lesson->steps.size(); ++i) {
        (void)lesson->stateAt(i);
    }
    (void)lessons::missingFeatures(*lesson);
    const std::string written = lessons::formatLesson(*lesson);
    auto again = lessons::parseLesson(written, "again.txt");
    if (!again) {
        fuzz::fail("formatLesson's text does not parse: " + again.error().message + "\n--- written:\n" + written);
    }
    fuzz::check(lessons::formatLesson(*again) == written, "formatLesson differs after a round trip");
    return 0;
}
