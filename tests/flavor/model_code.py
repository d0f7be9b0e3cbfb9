"""Models from code: MLflow runs this file to build the program (LM settings from the environment)."""

import os

import dspy
import mlflow

program = dspy.ChainOfThought("question -> answer")
program.set_lm(dspy.LM("openai/stub-model", api_base=os.environ["OPENAI_API_BASE"],
                       api_key=os.environ["OPENAI_API_KEY"], cache=False, num_retries=0))
mlflow.models.set_model(program)
