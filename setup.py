"""Builds the optional C speedups of chatmgmt.moderation; everything else is in pyproject.toml.

The extension is optional: when it cannot be built (no C compiler), the install goes on and
chatmgmt runs its pure-Python normalizer, which gives the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "chatmgmt.moderation._speedups",
            ["src/chatmgmt/moderation/_speedups.c"],
            optional=True,
        )
    ]
)
