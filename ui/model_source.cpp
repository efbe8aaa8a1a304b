#include "model_source.h"

#include "sinkscope/runtime/paths.h"

namespace sinkscope::ui {

Result<LoadedModel> loadModelSource(const std::string &source, const std::string &device,
                                    const ProgressCallback &progress)
{
    std::string archivePath;
    if (source.empty()) {
        auto ensured = ensureDefaultModel(progress);
        if (!ensured.ok()) {
            return ensured.error();
        }
        archivePath = ensured.value();
    } else {
        // A GGUF file or a Hugging Face folder is converted once into the cache; an archive is returned
        // as is.
        auto archive = archiveFor(source, [&progress](double f, const std::string &label) {
            return !progress || progress(f * 0.8, "Converting: " + label);
        });
        if (!archive.ok()) {
            return archive.error();
        }
        archivePath = archive.value();
    }
    LoadOptions options;
    options.device = device;
    options.progress = progress;
    auto model = Model::load(archivePath, options);
    if (!model.ok()) {
        return model.error();
    }
    return LoadedModel{std::move(model.value()), archivePath};
}

} // namespace sinkscope::ui
