//! Test harness shared by the end-to-end suites: locating external peers and reporting why a
//! test that needs one did not run.
