#pragma once
// Version of the hyplora runtime and CLI.
namespace hyplora {
const char* version_string();
}
