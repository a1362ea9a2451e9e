//! A team's first month: `init` for the project it finds, an order the
//! store rules without breaking anyone's reads, hosts without a
//! verbatim.toml, builds that say where they came from, environment names
//! checked (with a did-you-mean) before anything is written.
