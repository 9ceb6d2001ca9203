"""A minimal conversation template with the interface VideoLISA's runners use (test stand-in)."""

import copy


class Conversation:
    def __init__(self, roles, system, sep):
        self.roles = roles
        self.system = system
        self.sep = sep
        self.messages = []

    def append_message(self, role, message):
        self.messages.append([role, message])

    def get_prompt(self):
        text = self.system + self.sep
        for role, message in self.messages:
            text += f"{role}\n{message}{self.sep}"
        return text

    def copy(self):
        return copy.deepcopy(self)


conv_templates = {"phi3_instruct": Conversation(("<|user|>", "<|assistant|>"), "<|system|>\nfake", "<|end|>\n")}
