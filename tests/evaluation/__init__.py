"""Tests of the ReID evaluation subpackage."""
