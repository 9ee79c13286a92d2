"""python -m classifiers train | evaluate | predict"""
import sys

from classifiers.cli import main

sys.exit(main(prog="python -m classifiers"))
