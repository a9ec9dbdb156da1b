//! vqSGD quantizers (spec `vqsgd.md` sections 1-7).
