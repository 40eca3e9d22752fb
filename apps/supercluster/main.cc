// The `supercluster` binary: one executable, many subcommands (see cli/command.h).
#include "cli/command.h"

int main(int argc, char** argv) { return supercluster::cli::Main(argc, argv); }
