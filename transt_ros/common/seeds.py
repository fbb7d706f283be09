"""Seeds of the generated scenes: training draws from one, the demo and its bag from a held-out one."""

TRAINING_SCENE_SEED = 0
"""Scene seed of the generated training data (``config/train_demo.yaml``)."""

HELD_OUT_DEMO_SEED = 2026
"""Scene seed of the demo sequences and the demo bag: scenes the demo model never saw in training."""

HARD_DEMO_SEED = 2027
"""Scene seed of the held-out ``hard`` demo scenes (every effect of the generated scenes on)."""

MULTI_OBJECT_SEED = 2028
"""Scene seed of the held-out generated multi-object scenes (``transt-make-bag --objects K``)."""

CALIBRATION_SCENE_SEED = 2029
"""Scene seed of the int8 calibration scenes (``transt-export --int8``): neither trained on nor evaluated."""
