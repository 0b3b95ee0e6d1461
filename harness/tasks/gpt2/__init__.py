"""tasks/gpt2"""
