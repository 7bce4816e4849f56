// SPDX-License-Identifier: Apache-2.0
// Loads the CUDA plugin (cuda/runtime.h): libkvcore_cuda.so from libkvcore.so's own directory, else by name
// through the loader's search path.
#include "cuda/runtime.h"

#include <dlfcn.h>

#include <string>

#include "common/error.h"

namespace kvcore::cuda {
namespace {

constexpr const char* kPluginName = "libkvcore_cuda.so";

struct Loaded {
    const Runtime* table = nullptr;
    std::string error;
};

std::string own_directory() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&own_directory), &info) == 0 || info.dli_fname == nullptr) return "";
    const std::string path = info.dli_fname;
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

Loaded load() {
    Loaded loaded;
    void* handle = nullptr;
    std::string first_error;
    const std::string dir = own_directory();
    for (const std::string& candidate : {dir.empty() ? std::string() : dir + kPluginName, std::string(kPluginName)}) {
        if (candidate.empty()) continue;
        if ((handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
        if (first_error.empty()) first_error = dlerror();
    }
    if (handle == nullptr) {
        loaded.error = std::string("the CUDA plugin ") + kPluginName + " cannot be loaded: " + first_error;
        return loaded;
    }
    auto entry = reinterpret_cast<PluginEntry>(dlsym(handle, KVCORE_CUDA_PLUGIN_ENTRY));
    const Runtime* table = entry ? entry() : nullptr;
    if (table == nullptr || table->abi != kPluginAbi || table->params_bytes != sizeof(DecodeParams)) {
        loaded.error = std::string("the CUDA plugin ") + kPluginName + " is from another kvcore build";
        return loaded;
    }
    loaded.table = table;  // the plugin stays loaded for the process, as the CUDA runtime does
    return loaded;
}

}  // namespace

const Runtime& runtime() {
    static const Loaded loaded = load();
    if (loaded.table == nullptr) fail(KVC_ERR_UNSUPPORTED, "no usable CUDA: " + loaded.error);
    return *loaded.table;
}

}  // namespace kvcore::cuda
