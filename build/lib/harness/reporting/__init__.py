"""Reporting: tables, figures and their static export, built from records alone."""
