"""Trained transformers that implement a tracr program's circuit (SIIT, as InterpBench)."""
