//! `Connection`: the sans-IO client (see issue: Connection).
