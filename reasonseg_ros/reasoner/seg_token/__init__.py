"""The ``seg_token`` reasoner: LISA / GSVA / READ checkpoints, whose ``[SEG]`` states prompt SAM.

Imports nothing heavy; :func:`create` loads torch and transformers.
"""

from __future__ import annotations
