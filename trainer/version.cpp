#include "version.hpp"
namespace hyplora {
const char* version_string() { return "0.1.0"; }
}  // namespace hyplora
