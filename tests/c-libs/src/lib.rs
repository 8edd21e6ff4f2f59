//! Nothing to use: this package holds tests and an example showing that C libraries
//! linked at build time (libcurl, libpq) cooperate under `greenhub::monkey::patch_all()`.
