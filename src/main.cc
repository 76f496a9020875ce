// till: scoped, disposable API keys for AI agents. Wiring only; see src/cli.
#include "cli/cli_main.h"

int main(int argc, char** argv) { return till::run_cli(argc, argv); }
