"""Tests of corpus sources and packing into token contexts."""
