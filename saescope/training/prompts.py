"""Varied user prompts, built deterministically from a seed, for the reader to answer.

The default SAE is trained partly on the reader's own answers, because model outputs are what
users analyse most. Tasks cover explanation, advice, creative writing, code, maths, apology,
refusal-prone requests, formatting (lists, tables) and other languages.
"""

from __future__ import annotations

import random

TASKS: tuple[str, ...] = (
    "Explain {t} to a ten-year-old.",
    "Give me three practical tips about {t}.",
    "Write a short poem about {t}.",
    "Write a polite email to a colleague about {t}.",
    "What are the pros and cons of {t}?",
    "Summarise the history of {t} in a paragraph.",
    "Tell a very short story that involves {t}.",
    "I am upset about {t}. Can you help me calm down?",
    "Write a product review of something related to {t}.",
    "Describe {t} in a formal, academic tone.",
    "Describe {t} casually, like you're texting a friend.",
    "List five facts about {t} as a numbered list.",
    "Compare {t} with something similar and explain the differences.",
    "What questions should I ask an expert about {t}?",
    "Is {t} overrated? Give a balanced answer.",
    "Write a Python function that is useful for someone working on {t}.",
    "Write a haiku about {t}.",
    "Translate into French: 'I would like to learn more about {t}.'",
    "Réponds en français : qu'est-ce que {t} ?",
    "Responde en español: ¿por qué es importante {t}?",
    "Make a markdown table with two columns about {t}.",
    "Apologise to a customer whose order related to {t} arrived late.",
    "Give a step-by-step guide to getting started with {t}.",
    "What are common misconceptions about {t}?",
    "Write a tweet announcing a new event about {t}.",
    "Argue strongly in favour of {t}.",
    "Argue strongly against {t}.",
    "How much does {t} usually cost, and why?",
    "What would a pirate say about {t}?",
    "Write the opening lines of a news article about {t}.",
    "Answer in one sentence: what is {t}?",
    "Write a children's rhyme about {t}.",
    "What are the safety risks of {t}?",
    "Give me a quiz with three questions about {t}.",
    "Write a motivational speech about {t}.",
    "How has technology changed {t}?",
)

MATH_TASKS: tuple[str, ...] = (
    "What is {a} times {b}? Show your work.",
    "If I have {a} apples and give away {b}, how many are left?",
    "Solve for x: {a}x + {b} = {c}.",
    "What is {a} percent of {c}?",
    "Convert {a} kilometres to miles.",
)

CODE_TASKS: tuple[str, ...] = (
    "Write a Python function that {t}.",
    "Explain what this code does: `{c}`",
    "Write a JavaScript snippet that {t}.",
    "How do I {t} in SQL?",
    "Fix the bug in this Python code: `{c}`",
)

CODE_GOALS: tuple[str, ...] = (
    "reverses a string", "counts words in a file", "checks if a number is prime",
    "merges two sorted lists", "reads a CSV file", "removes duplicates from a list",
    "computes a factorial", "finds the largest element", "validates an email address",
    "sorts a dictionary by value", "sends an HTTP request", "parses a date",
    "flattens a nested list", "computes the average of numbers", "finds common elements",
    "converts Celsius to Fahrenheit", "generates a random password", "groups rows by a key",
)

CODE_SNIPPETS: tuple[str, ...] = (
    "for i in range(10): print(i*i)", "x = [a for a in xs if a % 2 == 0]",
    "def f(n): return n if n < 2 else f(n-1) + f(n-2)", "print(sum(range(1, 101)))",
    "SELECT name, COUNT(*) FROM users GROUP BY name", "const add = (a, b) => a + b;",
    "while True: break", "d = dict(zip(keys, values))", "s = s[::-1]",
    "if x = 5: print(x)", "nums.sort(reverse=True)", "with open('f.txt') as fh: data = fh.read()",
)

TOPICS: tuple[str, ...] = (
    "cats", "dogs", "the ocean", "volcanoes", "taxes", "climate change", "chess", "baking bread",
    "the moon landing", "electric cars", "coffee", "tea", "running a marathon", "gardening",
    "the stock market", "cryptocurrency", "medieval castles", "ancient Rome", "jazz music",
    "hip hop", "the Olympics", "football", "basketball", "learning a language", "meditation",
    "sleep", "vaccines", "the human heart", "black holes", "Mars", "recycling", "plastic pollution",
    "social media", "video games", "smartphones", "artificial intelligence", "robots",
    "public libraries", "museums", "job interviews", "remote work", "saving money", "renting a flat",
    "buying a house", "wedding planning", "birthday parties", "camping", "hiking", "cycling",
    "swimming", "yoga", "vegetarian cooking", "pizza", "sushi", "chocolate", "wine", "beer",
    "the French Revolution", "World War II", "democracy", "elections", "free speech", "privacy",
    "the internet", "email etiquette", "customer service", "online shopping", "airline travel",
    "trains", "city planning", "traffic", "bees", "whales", "rainforests", "deserts", "snow",
    "hurricanes", "earthquakes", "photography", "painting", "poetry", "Shakespeare", "movies",
    "horror films", "romantic comedies", "science fiction", "fantasy novels", "comic books",
    "podcasts", "teaching", "homework", "university fees", "student loans", "healthcare costs",
    "nursing", "dentists", "hospitals", "insurance", "car repairs", "plumbing", "woodworking",
    "knitting", "fashion", "sneakers", "perfume", "skin care", "hair cuts", "weddings",
    "grief", "friendship", "loneliness", "parenting", "toddlers", "teenagers", "retirement",
    "volunteering", "charity", "small businesses", "startups", "marketing", "advertising",
    "spreadsheets", "databases", "cloud computing", "cybersecurity", "passwords", "open source",
    "Linux", "the Python language", "JavaScript", "recipes with eggs", "fast food", "diets",
)


def build_prompts(n: int, seed: int = 0) -> list[str]:
    """Return ``n`` distinct prompts mixing the task families above, deterministically for ``seed``."""
    rng = random.Random(seed)
    prompts: list[str] = []
    seen: set[str] = set()
    while len(prompts) < n:
        roll = rng.random()
        if roll < 0.08:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            p = rng.choice(MATH_TASKS).format(a=a, b=b, c=a * b + rng.randint(1, 50))
        elif roll < 0.18:
            p = rng.choice(CODE_TASKS).format(t=rng.choice(CODE_GOALS), c=rng.choice(CODE_SNIPPETS))
        else:
            p = rng.choice(TASKS).format(t=rng.choice(TOPICS))
        if p not in seen:
            seen.add(p)
            prompts.append(p)
    return prompts
