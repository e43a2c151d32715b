//! The integration tests of `tresor-format`, one test binary: `vectors` checks the code against
//! the committed test vectors (`tests/vectors/v2.json`), `decoders` feeds every decoder arbitrary
//! bytes. Run one with `cargo test -p tresor-format --test format vectors::`.

mod decoders;
mod vectors;
