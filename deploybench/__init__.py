"""deploybench: which vision backbone should I deploy on this device?"""
__version__ = "0.1.0"
