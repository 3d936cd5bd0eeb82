"""The pipeline's stages, one module each, in the order lines flow through them:

    read -> parse -> aggregate -> write -> send

Each stage is a plain object: it takes a message and returns messages, and knows nothing of
processes or queues. The runners (plogd.runner) move messages between them.
"""
