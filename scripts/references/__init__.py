"""Training code for CPWC detectors, in the style of torchvision's references (importing the installed cpwc)."""
