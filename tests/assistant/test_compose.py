"""Answers the extractive responder composes from several sources, with the real embedder: comparisons,
choices, yes/no questions, bridges, and messages read with their speaker and day."""

from __future__ import annotations

import pytest

from assistant.chat.compose import cover, follow_ups
from assistant.chat.extractive import (
    NO_ANSWER,
    Candidate,
    ExtractiveResponder,
    Ranking,
    close_call,
    defined_subject,
    defines,
    named_subject,
    quotable,
    quote,
    rival_document,
    said_by_other,
    states,
)
from assistant.chat.passages import Passage
from assistant.chat.shapes import shape
from retrieval.embedder import Embedder
from retrieval.lexical import analyse

ADA = Passage("Ada Quill (born 3 March 1901) was a Welsh poet.", "Ada Quill")
BRAM = Passage("Bram Tolly (born 9 June 1888) was a Welsh painter.", "Bram Tolly")
BRAM_SCOTTISH = Passage("Bram Tolly (born 9 June 1888) was a Scottish painter.", "Bram Tolly")

NOVEL = Passage("The Glass Orchard is a 1962 novel by Mira Penhallow about a family of apple growers.", "The Glass Orchard")
AUTHOR = Passage("Mira Penhallow was a Cornish writer who was born in Truro in 1921.", "Mira Penhallow")

CAROLINE = Passage("I went to a support group yesterday.", speaker="Caroline", timestamp="2023-05-08T13:56")
MELANIE = Passage("I painted a lake last year.", speaker="Melanie", timestamp="2023-05-08T14:02")


@pytest.fixture(scope="module")
def responder(embedder: Embedder) -> ExtractiveResponder:
    return ExtractiveResponder(embedder)


def test_born_first_cites_both_and_names_the_earlier(responder: ExtractiveResponder) -> None:
    a = responder.answer("Who was born first, Ada Quill or Bram Tolly?", [ADA, BRAM])
    assert "[1]" in a.text and "[2]" in a.text
    assert a.text.endswith("So the answer is Bram Tolly: 9 June 1888, against 3 March 1901 for Ada Quill.")
    # The winner's fact comes first.
    assert [p.marker for p in a.picks] == [2, 1]


def test_a_comparison_asked_as_yes_no_answers_yes_or_no_first(responder: ExtractiveResponder) -> None:
    no = responder.answer("Was Ada Quill born earlier than Bram Tolly?", [ADA, BRAM])
    assert no.text.startswith("No. ") and "[1]" in no.text and "[2]" in no.text
    yes = responder.answer("Was Bram Tolly born earlier than Ada Quill?", [ADA, BRAM])
    assert yes.text.startswith("Yes. ")


def test_a_sentence_that_says_he_speaks_of_its_source_subject(responder: ExtractiveResponder) -> None:
    player = Passage("Joe Quill (born 1992) is an American football linebacker for the Eagles. "
                     "He played college football at Oregon.", "Joe Quill (American football)")
    team = Passage("The Oregon Ducks are a college football team located in Eugene, Oregon. "
                   "The Ducks end each regular season with the Civil War rivalry game.", "Oregon Ducks football")
    a = responder.answer("Joe Quill played for which team that ends its regular season with the Civil War rivalry game?",
                         [team, player])
    assert a.text != NO_ANSWER
    assert "Civil War rivalry game [1]" in a.text and "He played college football at Oregon [2]" in a.text


def test_a_sentence_naming_part_of_its_title_speaks_of_the_whole_name(responder: ExtractiveResponder) -> None:
    person = Passage("Harland was educated at The Dragon School in Oxford. He then went to Peterhouse, Cambridge.",
                     "Ian Harland")
    a = responder.answer("Where did Ian Harland study before Peterhouse?", [person])
    assert a.text != NO_ANSWER and "Dragon School" in a.text


def test_a_titles_disambiguation_does_not_unlink_two_sources_of_one_name(responder: ExtractiveResponder) -> None:
    game = Passage("Catwoman is an action tie-in video game based on the 2004 film of the same name.", "Catwoman (video game)")
    film = Passage("Catwoman is a 2004 American superhero film directed by Pitof.", "Catwoman (film)")
    a = responder.answer("What movie did Pitof direct which had a tie-in video game in 2004?", [game, film])
    assert a.text != NO_ANSWER and "[1]" in a.text and "[2]" in a.text


def test_a_linked_document_may_cover_with_a_second_sentence() -> None:
    actress = Passage("Cressa Bonly (born 1989) is an English actress. She is the youngest daughter of Lady Mara Curzel.",
                      "Cressa Bonly")
    film = Passage("The Night Man is a 2017 American horror film directed by Stacy Title. "
                   "The film stars Douglas Smith, Lucien Laviscount and Cressa Bonly.", "The Night Man")
    r = ranking([(1, "She is the youngest daughter of Lady Mara Curzel.", 0.9),
                 (2, "The Night Man is a 2017 American horror film directed by Stacy Title.", 0.5),
                 (2, "The film stars Douglas Smith, Lucien Laviscount and Cressa Bonly.", 0.6)])
    question = "The youngest daughter of Lady Mara Curzel stars with Douglas Smith and Lucien Laviscount in what 2017 film?"
    # The cast sentence links the film's document (it names the actress); its other sentence gives the year.
    assert cover(r, [actress, film], question, [0]) == [2, 1]


def test_born_first_does_not_depend_on_source_order(responder: ExtractiveResponder) -> None:
    a = responder.answer("Who was born first, Ada Quill or Bram Tolly?", [BRAM, ADA])
    assert a.text.endswith("So the answer is Bram Tolly: 9 June 1888, against 3 March 1901 for Ada Quill.")


def test_younger_names_the_later_born(responder: ExtractiveResponder) -> None:
    a = responder.answer("Who is younger, Ada Quill or Bram Tolly?", [ADA, BRAM])
    assert "[1]" in a.text and "[2]" in a.text
    assert a.text.endswith("So the answer is Ada Quill: 3 March 1901, against 9 June 1888 for Bram Tolly.")


def test_born_first_reads_a_life_span_as_the_birth_year(responder: ExtractiveResponder) -> None:
    lifespan = Passage("Bram Tolly (1888 – 3 May 1950) was a Welsh painter.", "Bram Tolly")
    a = responder.answer("Who was born first, Ada Quill or Bram Tolly?", [ADA, lifespan])
    assert "So the answer is Bram Tolly" in a.text


def test_both_welsh_says_yes_and_cites_each(responder: ExtractiveResponder) -> None:
    a = responder.answer("Are Ada Quill and Bram Tolly both Welsh?", [ADA, BRAM])
    assert a.text.startswith("Yes. ")
    assert "[1]" in a.text and "[2]" in a.text


def test_both_welsh_says_no_when_one_is_not(responder: ExtractiveResponder) -> None:
    a = responder.answer("Are Ada Quill and Bram Tolly both Welsh?", [ADA, BRAM_SCOTTISH])
    assert a.text.startswith("No. ")
    # The fact that makes it "no" is shown.
    assert "Scottish painter [2]" in a.text


def test_same_nationality_compares_what_each_source_says(responder: ExtractiveResponder) -> None:
    question = "Were Ada Quill and Bram Tolly of the same nationality?"
    assert responder.answer(question, [ADA, BRAM]).text.startswith("Yes. ")
    assert responder.answer(question, [ADA, BRAM_SCOTTISH]).text.startswith("No. ")


def test_a_choice_names_the_entity_whose_source_fits(responder: ExtractiveResponder) -> None:
    a = responder.answer("Which is a poet, Ada Quill or Bram Tolly?", [ADA, BRAM])
    assert a.text.endswith("So the answer is Ada Quill.")
    assert "[1]" in a.text and "[2]" in a.text


def test_what_two_share_gives_a_fact_about_each(responder: ExtractiveResponder) -> None:
    a = responder.answer("Ada Quill and Bram Tolly were both from what country?", [ADA, BRAM])
    assert "Welsh poet [1]" in a.text and "Welsh painter [2]" in a.text


def test_a_bridge_follows_the_named_author_to_their_own_source(responder: ExtractiveResponder) -> None:
    a = responder.answer("Where was the author of The Glass Orchard born?", [NOVEL, AUTHOR])
    assert "Truro" in a.text
    assert "[1]" in a.text and "[2]" in a.text


def test_a_bridge_reads_a_second_retrieval_steps_source(responder: ExtractiveResponder) -> None:
    second = Passage(AUTHOR.text, AUTHOR.title, hop=2)
    a = responder.answer("Where was the author of The Glass Orchard born?", [NOVEL, second])
    assert "born in Truro in 1921 [2]" in a.text and "[1]" in a.text


def test_a_second_steps_source_alone_is_not_the_answer(responder: ExtractiveResponder) -> None:
    # A second step's sources only complete an answer the first step's sources start.
    unrelated = Passage("Apple growers in Kent prune their trees in winter.", "Apple growing")
    second = Passage(AUTHOR.text, AUTHOR.title, hop=2)
    assert responder.answer("Where was Mira Penhallow born?", [unrelated, second]).text == NO_ANSWER
    # The same source from the first step answers.
    assert "born in Truro in 1921 [1]" in responder.answer("Where was Mira Penhallow born?", [AUTHOR]).text


# A knowledge base holds prose and chat together: a message retrieved beside prose sources (it
# shares a word or two with the question) must not make a question about the prose one about messages.
FUNICULAR = Passage("I finally rode the glass funicular up Mount Pellow yesterday.", speaker="Oriane",
                    timestamp="2023-05-08T13:56")


def test_a_comparison_over_prose_holds_with_a_message_among_the_sources(responder: ExtractiveResponder) -> None:
    for sources in ([ADA, BRAM, FUNICULAR], [FUNICULAR, ADA, BRAM]):
        a = responder.answer("Who was born first, Ada Quill or Bram Tolly?", sources)
        assert a.text.endswith("So the answer is Bram Tolly: 9 June 1888, against 3 March 1901 for Ada Quill."), a


def test_a_bridge_over_prose_holds_with_a_message_among_the_sources(responder: ExtractiveResponder) -> None:
    question = "Where was the author of The Glass Orchard born?"
    a = responder.answer(question, [NOVEL, FUNICULAR, AUTHOR])
    assert "Truro" in a.text and "[1]" in a.text and "[3]" in a.text and "[2]" not in a.text
    # The second retrieval step is asked for too (the first step found the novel only).
    passages = [NOVEL, FUNICULAR]
    assert follow_ups(responder.rank(question, passages), passages, question, shape(question)) == [
        f"{question} Mira Penhallow"]


def test_a_bridge_follows_the_name_that_carries_what_the_question_looks_for(responder: ExtractiveResponder) -> None:
    team = Passage("The Harrow Kestrels women's rowing team represents the University of Harrow in all NCAA Division I "
                   "rowing competitions. The team competes in the Saltmarsh Coast Conference.",
                   "Harrow Kestrels women's rowing")
    question = "The Harrow Kestrels women's rowing team competes in a conference that was formerly known as what?"
    # The source names the university first; the question looks for a conference.
    queries = follow_ups(responder.rank(question, [team]), [team], question, shape(question))
    assert queries[0] == f"{question} Saltmarsh Coast Conference", queries
    conference = Passage("The Saltmarsh Coast Conference was known as the Fenland Athletic League from 1971 to 1990.",
                         "Saltmarsh Coast Conference", hop=2)
    a = responder.answer(question, [team, Passage("The University of Harrow is a public university.",
                                                  "University of Harrow", hop=2), conference])
    assert "Fenland Athletic League" in a.text, (a.reasons, a.text)


def test_a_question_about_a_message_is_answered_from_messages_beside_prose(responder: ExtractiveResponder) -> None:
    a = responder.answer("When did Caroline go to the support group?", [ADA, CAROLINE, NOVEL])
    assert a.text == 'Caroline said on 8 May 2023: "I went to a support group yesterday (7 May 2023)." [2]'
    # With only messages, no second retrieval step: a conversation has no entity pages.
    assert follow_ups(responder.rank("What did Oriane ride?", [FUNICULAR]), [FUNICULAR], "What did Oriane ride?",
                      shape("What did Oriane ride?")) == []


def test_a_pronoun_without_its_sentence_before_is_named_by_its_source(responder: ExtractiveResponder) -> None:
    jupiter = Passage("Jupiter is the largest planet in the Solar System. It is a gas giant.", "Jupiter")
    mars = Passage("Mars looks red because its surface is covered in iron oxide dust. "
                   "It has two small moons, Phobos and Deimos.", "Mars")
    a = responder.answer("Which is larger, Jupiter or Mars?", [jupiter, mars])
    assert "Mars: It has two small moons, Phobos and Deimos [2]." in a.text, a.text
    assert "Jupiter is the largest planet in the Solar System [1]." in a.text
    # After its own source's sentence the pronoun reads as written.
    player = Passage("Joe Quill (born 1992) is an American football linebacker. He played college football at Oregon.",
                     "Joe Quill (American football)")
    both = responder.answer("Where did Joe Quill play college football?", [player])
    assert "He played college football at Oregon [1]." in both.text and "Joe Quill:" not in both.text, both.text


def test_a_comparison_of_values_in_different_units_states_no_result(responder: ExtractiveResponder) -> None:
    sahara = Passage("The Sahara in northern Africa is the largest hot desert in the world, covering about nine "
                     "million square kilometres.", "Sahara")
    antarctica = Passage("Antarctica is the coldest, windiest and driest continent. Most of it is covered by an ice "
                         "sheet that is on average almost two kilometres thick.", "Antarctica")
    a = responder.answer("Which is bigger, the Sahara or Antarctica?", [sahara, antarctica])
    assert "[1]" in a.text and "[2]" in a.text, a.text
    assert "So the answer is" not in a.text, a.text  # nine million square kilometres against a thickness


def test_a_comparison_reads_the_numbers_that_measure_alike_not_a_names_number(responder: ExtractiveResponder) -> None:
    west = Passage("The building is a 749 ft , 44-story building located on West Street in Lower Manhattan.",
                   "200 West Street")
    seventh = Passage("888 7th Avenue is a 628 ft (191m) tall office skyscraper in Midtown Manhattan.", "888 7th Avenue")
    a = responder.answer("Is the building located at 200 West Street taller than the one at 888 7th Avenue?", [west, seventh])
    assert a.text.startswith("Yes. "), a.text  # 749 ft against 628 ft, not against the 888 of a name
    b = responder.answer("Which is taller, 200 West Street or 888 7th Avenue?", [west, seventh])
    assert b.text.endswith("So the answer is 200 West Street: 749 ft, against 628 ft for 888 7th Avenue."), b.text


def test_colder_reads_a_negative_temperature_as_the_lower_one(responder: ExtractiveResponder) -> None:
    vostok = Passage("Vostok Station recorded the lowest temperature on Earth, −89.2 °C, in 1983.", "Vostok Station")
    oymyakon = Passage("Oymyakon once reached −67.7 °C, the coldest reading in the Northern Hemisphere.", "Oymyakon")
    a = responder.answer("Which is colder, Vostok Station or Oymyakon?", [vostok, oymyakon])
    assert a.text.endswith("So the answer is Vostok Station: −89.2 °C, against −67.7 °C for Oymyakon."), a.text


def test_before_compares_the_dates_of_two_things(responder: ExtractiveResponder) -> None:
    press = Passage("Johannes Gutenberg introduced movable-type printing in Europe around 1440.", "Printing press")
    web = Passage("The World Wide Web was invented by Tim Berners-Lee at CERN in 1989.", "World Wide Web")
    yes = responder.answer("Was the printing press invented before the World Wide Web?", [press, web])
    assert yes.text.startswith("Yes. ") and "[1]" in yes.text and "[2]" in yes.text, yes.text
    no = responder.answer("Was the World Wide Web invented before the printing press?", [press, web])
    assert no.text.startswith("No. "), no.text


def test_what_is_x_is_answered_by_the_sentence_that_says_what_x_is(responder: ExtractiveResponder) -> None:
    configured = Passage("With nothing configured, OpenChat keeps its vectors in Qdrant local mode, its ledger in a "
                         "SQLite file, and runs a local anvil chain, all under one data directory.", "OpenChat embedded defaults")
    defined = Passage("OpenChat is a pay-per-answer knowledge assistant. People contribute short snippets or whole data "
                      "sets.", "OpenChat")
    a = responder.answer("What is OpenChat?", [configured, defined])
    assert a.text.startswith("OpenChat is a pay-per-answer knowledge assistant [2]."), a.text
    subject = defined_subject("Who was Shirley Temple Black?")
    assert subject and defines("Shirley Temple Black (April 23, 1928 – February 10, 2014) was an American actress.", subject)
    assert not defines("Every Shirley Temple Black film was popular.", subject)
    assert defined_subject("What did Maria run?") is None


def test_a_yes_no_over_two_common_nouns_gives_a_fact_about_each(responder: ExtractiveResponder) -> None:
    penguins = Passage("Penguins are flightless seabirds that live almost entirely in the Southern Hemisphere.",
                       "Penguins")
    cheetah = Passage("The cheetah is the fastest land animal, reaching about 100 kilometres per hour.", "Cheetah")
    a = responder.answer("Are penguins and cheetahs both birds?", [penguins, cheetah])
    assert a.text.startswith("No. ") and "[1]" in a.text and "[2]" in a.text, a.text


@pytest.mark.parametrize(
    ("sentence", "title", "named"),
    [
        ("He played college football at Oregon.", "Joe Quill (American football)",
         "Joe Quill: He played college football at Oregon."),
        ("Its rings are made of ice.", "Saturn", "Saturn: Its rings are made of ice."),
        ("It is not visible from the Moon.", None, "It is not visible from the Moon."),
        ("Itself a planet, Mars has two moons.", "Mars", "Itself a planet, Mars has two moons."),
        ("Mars has two moons.", "Mars", "Mars has two moons."),
        ("Most of it is covered by an ice sheet.", "Antarctica", "Antarctica: Most of it is covered by an ice sheet."),
        ("Most people there live in cities.", "Antarctica", "Most people there live in cities."),
    ],
)
def test_named_subject(sentence: str, title: str | None, named: str) -> None:
    assert named_subject(sentence, title) == named


def test_a_message_answers_when_with_the_resolved_date(responder: ExtractiveResponder) -> None:
    a = responder.answer("When did Caroline go to the support group?", [CAROLINE, MELANIE])
    assert a.text == 'Caroline said on 8 May 2023: "I went to a support group yesterday (7 May 2023)." [1]'
    assert [p.marker for p in a.picks] == [1]


def test_another_speakers_message_does_not_answer_for_them(responder: ExtractiveResponder) -> None:
    a = responder.answer("When did Melanie go to the support group?", [CAROLINE, MELANIE])
    assert a.text == NO_ANSWER
    assert "other_speaker" in a.reasons


def test_the_asked_speakers_own_message_answers(responder: ExtractiveResponder) -> None:
    a = responder.answer("When did Melanie paint a lake?", [CAROLINE, MELANIE])
    assert "Melanie said on 8 May 2023" in a.text and "last year (2022)" in a.text and "[2]" in a.text


def test_a_speakers_own_message_answers_a_paraphrased_question(responder: ExtractiveResponder) -> None:
    # "participate" is in no message: Maria's own first-person message answers for her...
    maria = Passage("I ran a 5K charity run yesterday.", None, "Maria", "2023-05-08T13:56")
    other = Passage("Octopuses have three hearts and blue blood.", "Octopus")
    a = responder.answer("What did Maria participate in?", [maria, other])
    assert a.text.startswith('Maria said on 8 May 2023: "I ran a 5K charity run yesterday (7 May 2023)."'), a.text
    # ...and her reply about someone else's run does not.
    reply = Passage("That charity run sounds great, Mel!", None, "Maria", "2023-05-08T13:56")
    assert responder.answer("What did Maria participate in?", [reply, other]).text == NO_ANSWER


def test_a_contribution_of_bare_questions_never_answers_them(responder: ExtractiveResponder) -> None:
    asked = Passage("How many hearts does an octopus have? Do octopuses have blue blood?")
    assert responder.answer("How many hearts does an octopus have?", [asked]).text == NO_ANSWER
    assert responder.answer("Do octopuses have blue blood?", [asked]).text == NO_ANSWER


def test_with_bare_questions_beside_a_statement_only_the_statement_is_cited(responder: ExtractiveResponder) -> None:
    asked = Passage("How many hearts does an octopus have? Do octopuses have blue blood?")
    told = Passage("An octopus has three hearts and blue blood.")
    a = responder.answer("How many hearts does an octopus have?", [asked, told])
    assert "three hearts" in a.text
    assert [p.marker for p in a.picks] == [2] and "[1]" not in a.text


def test_greetings_are_not_answers(responder: ExtractiveResponder) -> None:
    chat = [Passage("Thanks Nate!", speaker="Joanna", timestamp="2023-05-08T13:00"),
            Passage("Good to see you!", speaker="Nate", timestamp="2023-05-08T13:01")]
    assert responder.answer("What did Nate say to Joanna?", chat).text == NO_ANSWER
    assert responder.answer("Who did Joanna thank?", chat).text == NO_ANSWER


@pytest.mark.parametrize(
    "sentence",
    ["Thanks Nate!", "Good to see you!", "That's awesome!", "Hi Caroline!", "I love it!", "Yes.",
     "How are you?", '"Is it true?"', "Do octopuses have blue blood?", "Is it blue, right?",
     # A note of what the message attached does not make its question a statement.
     "How often do you all work out together? [shares a photo: a photo of a group of people in a gym]",
     "Where was this taken? [image]"],
)
def test_states_is_false_for_questions_greetings_and_reactions(sentence: str) -> None:
    assert not states(sentence)


@pytest.mark.parametrize(
    "sentence",
    ["I adopted a puppy last week.", "Thanks Nate, I adopted a puppy!", "I love painting!",
     "An octopus has three hearts",
     # More than eight words always say something, even of friendly words.
     "Hey Mel, it was so good to see you and the kids again at the lake house!",
     # A question tag asks for agreement: the sentence still says what it says.
     "Sunflowers mean warmth and happiness, right?", "You got a new puppy, didn't you, no?",
     "Painted this last week! [shares a photo: a painting of a sunset over a lake]"],
)
def test_states_is_true_for_statements(sentence: str) -> None:
    assert states(sentence)


def test_a_short_message_is_quoted_whole_without_its_questions_and_greetings() -> None:
    message = "Thanks, Caroline! I got promoted at work! I'm the assistant manager now. How about you?"
    assert quote(message, ["I got promoted at work!"]) == "I got promoted at work! I'm the assistant manager now."


def test_a_long_message_is_quoted_by_its_picked_sentences_and_the_one_after_each() -> None:
    filler = " ".join(f"We walked past house number {n} on the long road." for n in range(1, 8))
    message = f"I got promoted at work! I'm the assistant manager now. {filler}"
    assert quote(message, ["I got promoted at work!"]) == "I got promoted at work! I'm the assistant manager now."


def test_an_answer_from_a_message_quotes_the_sentence_after_the_one_that_matched(responder: ExtractiveResponder) -> None:
    said = Passage("Guess what, Nate! I finally got promoted at work! I'm the assistant manager of the store now.",
                   speaker="John", timestamp="2023-06-16T10:00")
    a = responder.answer("What did John get promoted to?", [said])
    assert "assistant manager" in a.text and a.text.endswith("[1]")


def test_a_fact_another_speaker_says_better_is_theirs(responder: ExtractiveResponder) -> None:
    ran = Passage("The charity race for mental health last Saturday made me realize how much self-care matters.",
                  speaker="Melanie", timestamp="2023-05-25T13:14")
    cheered = Passage("That race sounds great, Mel! So proud of you for taking part!", speaker="Caroline",
                      timestamp="2023-05-25T13:16")
    mine = responder.answer("What did Melanie realize at the charity race?", [ran, cheered])
    assert "self-care matters" in mine.text and "said_by_other" not in mine.reasons
    # Asked about Caroline, whose only message on it is a reaction: the race and what it taught are Melanie's.
    theirs = responder.answer("What did Caroline realize at the charity race?", [cheered, ran])
    assert theirs.text == NO_ANSWER and "said_by_other" in theirs.reasons


CHAT = [Passage("Guess what, I adopted a puppy last week! Her name is Coco.", speaker="Priya", timestamp="2024-03-11T09:15"),
        Passage("That's awesome! I started pottery classes yesterday, made a wonky bowl.", speaker="Tomás",
                timestamp="2024-03-11T09:20"),
        Passage("I'm running the Lisbon half marathon next month, been training every morning.", speaker="Priya",
                timestamp="2024-04-02T18:00"),
        Passage("I got promoted to head chef at the bistro on Friday!", speaker="Tomás", timestamp="2024-04-07T12:00"),
        Passage("Went hiking in Sintra with my sister on Saturday, the views were unreal.", speaker="Priya",
                timestamp="2024-04-15T10:00")]


def test_what_activities_a_speaker_has_done_quotes_each_of_their_messages(responder: ExtractiveResponder) -> None:
    a = responder.answer("What activities has Priya done?", CHAT)
    assert sorted({p.marker for p in a.picks}) == [1, 3, 5], (a.reasons, a.text)
    assert "adopted a puppy" in a.text and "half marathon" in a.text and "hiking in Sintra" in a.text
    theirs = responder.answer("What activities has Tomás done?", CHAT)
    assert sorted({p.marker for p in theirs.picks}) == [2, 4], (theirs.reasons, theirs.text)


def test_several_things_with_a_qualifier_no_message_meets_are_refused(responder: ExtractiveResponder) -> None:
    # Her messages are about a puppy, a race and a hike: none with her kids.
    a = responder.answer("What activities has Priya done with her kids?", CHAT)
    assert a.text == NO_ANSWER and "low_score" in a.reasons


@pytest.mark.parametrize(("own", "other", "fires"), [(0.60, 0.63, True), (0.60, 0.61, False), (0.60, 0.50, False)])
def test_said_by_other_compares_the_speakers_best_sentences_names_aside(own: float, other: float, fires: bool) -> None:
    r = ranking([(1, "That race sounds great, Mel!", own + 0.08), (2, "The race made me realize a lot.", other)])
    r = Ranking(r.candidates, r.scores, r.order, strengths=[own, other])
    speakers = ["Caroline", "Melanie"]
    assert said_by_other("What did Caroline realize at the race?", r, ["Caroline", "Melanie"], speakers) is fires
    # Only a question about one speaker: both named, or none, is not a question about whose fact it is.
    assert not said_by_other("What did Caroline and Melanie realize?", r, ["Caroline", "Melanie"], speakers)
    assert not said_by_other("What did anyone realize?", r, ["Caroline", "Melanie"], speakers)


def test_a_resolved_date_is_no_opposite_of_the_question(responder: ExtractiveResponder) -> None:
    # "last Saturday" resolves to "the Saturday before 25 May 2023": that "before" is ours, not the
    # message's, and is no antonym of the question's "after".
    ran = Passage("I ran a charity race last Saturday. It made me realize how much self-care matters.",
                  speaker="Melanie", timestamp="2023-05-25T13:14")
    a = responder.answer("What did Melanie realize after the charity race?", [ran])
    assert "self-care matters" in a.text and "(the Saturday before 25 May 2023, 20 May 2023)" in a.text, a.reasons


def test_a_question_the_next_statement_points_back_at_is_quoted_with_it() -> None:
    message = "Love experimenting with spices. Have you been to Universal Studios? Planning a trip there next month."
    assert quote(message, ["Planning a trip there next month."]) == message
    # A question the next sentence does not point back at stays out.
    assert quote("How are you? I went to Paris yesterday.", []) == "I went to Paris yesterday."
    filler = " ".join(f"We walked past house number {n} on the long road." for n in range(1, 8))
    long = f"{filler} Have you been to Universal Studios? Planning a trip there next month."
    assert quote(long, ["Planning a trip there next month."]) == (
        "Have you been to Universal Studios? Planning a trip there next month.")


def test_a_message_answers_about_what_its_own_question_named(responder: ExtractiveResponder) -> None:
    # The place is named only in the speaker's question; the statement after it is about it.
    said = Passage("Thanks! Love experimenting with spices. By the way, have you been to Universal Studios? "
                   "Planning a trip there next month.", speaker="Tim", timestamp="2023-08-31T14:52")
    other = Passage("I tried a new curry recipe with my brother last night.", speaker="Tim", timestamp="2023-08-30T10:00")
    a = responder.answer("What month did Tim plan on going to Universal Studios?", [said, other])
    assert "Universal Studios? Planning a trip there next month (September 2023)." in a.text, a.reasons
    assert a.text.endswith("[1]")
    # Without the question before it, nothing names the place: the answer is refused.
    bare = Passage("Thanks! Love experimenting with spices. Planning a trip next month.", speaker="Tim",
                   timestamp="2023-08-31T14:52")
    assert responder.answer("What month did Tim plan on going to Universal Studios?", [bare, other]).text == NO_ANSWER


@pytest.mark.parametrize(
    ("sentence", "kept"),
    [("The Minnesota Wolves!", True), ("It was amazing.", True), ("I love painting!", True),
     ("Hey Caroline!", False), ("Thanks, Caroline!", False), ("Thanks!", False), ("So cool!", False),
     ("Which team?", False), ("Which team? [shares a photo: a jersey]", False)],
)
def test_a_quotation_keeps_names_and_short_statements_but_not_greetings(sentence: str, kept: bool) -> None:
    assert quotable(sentence) is kept


def test_an_answer_reads_on_into_the_speakers_next_message(responder: ExtractiveResponder) -> None:
    signed = Passage("I just signed with a new team - excited for the season!", speaker="John",
                     timestamp="2023-05-21T10:00", next=3)
    other = Passage("I baked bread with my kids on Sunday.", speaker="John", timestamp="2023-05-20T09:00")
    named = Passage("The Minnesota Wolves! I can't wait to play with them!", speaker="John",
                    timestamp="2023-05-21T10:00", hop=3)
    a = responder.answer("Which team did John sign with?", [signed, other, named])
    assert "signed with a new team" in a.text and '"The Minnesota Wolves! ' in a.text and a.text.endswith("[3]")
    assert [p.marker for p in a.picks] == [1, 3]
    # Without the link the next message is not read: it is not a search result of its own.
    alone = responder.answer("Which team did John sign with?", [Passage(signed.text, speaker="John", timestamp=signed.timestamp),
                                                                 other, named])
    assert "Minnesota" not in alone.text


def ranking(rows: list[tuple[int, str, float]]) -> Ranking:
    """A ranking of (marker, sentence, score) rows, best first, as ``ExtractiveResponder.rank`` builds."""
    candidates = [Candidate(marker, sentence, frozenset(analyse(sentence))) for marker, sentence, _ in rows]
    scores = [score for _, _, score in rows]
    return Ranking(candidates, scores, sorted(range(len(rows)), key=lambda i: scores[i], reverse=True))


def test_a_close_rival_from_another_document_is_found() -> None:
    r = ranking([(1, "The bridge opened in 1961.", 0.900), (2, "The bridge opened in 1962.", 0.895)])
    passages = [Passage("The bridge opened in 1961.", "Tamar Bridge"), Passage("The bridge opened in 1962.", "Tamar crossings")]
    assert rival_document(r, passages) == 1


def test_no_rival_when_far_behind_from_the_same_title_or_untitled() -> None:
    far = ranking([(1, "The bridge opened in 1961.", 0.900), (2, "The bridge opened in 1962.", 0.800)])
    two_titled = [Passage("The bridge opened in 1961.", "Tamar Bridge"), Passage("The bridge opened in 1962.", "Tamar crossings")]
    assert rival_document(far, two_titled) is None
    close = ranking([(1, "The bridge opened in 1961.", 0.900), (2, "The bridge opened in 1962.", 0.895)])
    # Two chunks of one article are one document: a close call there stays a refusal.
    one_title = [Passage("The bridge opened in 1961.", "Tamar Bridge"), Passage("The bridge opened in 1962.", "Tamar Bridge")]
    assert rival_document(close, one_title) is None
    assert rival_document(close, [Passage("The bridge opened in 1961."), two_titled[1]]) is None


def test_a_close_call_ignores_the_sentences_the_answer_cites() -> None:
    r = ranking([(1, "The bridge opened in 1961.", 0.900), (2, "The bridge opened in 1962.", 0.895)])
    assert close_call(r)
    assert not close_call(r, cited=[0, 1])
    assert not close_call(ranking([(1, "The bridge opened in 1961.", 0.900), (2, "The bridge opened in 1962.", 0.800)]))


def test_a_speakers_message_as_close_as_a_tie_joins_the_answer_instead_of_refusing_it(responder: ExtractiveResponder) -> None:
    rows = [(1, "I ran a 5K charity run yesterday.", 0.594), (2, "I saw it through a telescope on Friday.", 0.590),
            (3, "I went to see the Great Wall of China last month.", 0.151)]
    r = ranking(rows)
    passages = [Passage(rows[0][1], speaker="Maria", timestamp="2023-05-08T13:56"),
                Passage(rows[1][1], speaker="Maria", timestamp="2023-05-09T10:00"),
                Passage(rows[2][1], speaker="John", timestamp="2023-06-01T09:00")]
    chosen = responder.select(r, passages, "What did Maria participate in?")
    assert chosen == [0, 1] and not close_call(r, cited=chosen)  # both of hers, so no tie to refuse
    # Further behind, a message sharing no word with the question stays out (chit-chat), as before.
    apart = ranking([rows[0], (2, rows[1][1], 0.560), rows[2]])
    assert responder.select(apart, passages, "What did Maria participate in?") == [0]


def test_the_day_a_question_names_picks_the_message_said_then(responder: ExtractiveResponder) -> None:
    # Said in the same month, so the words of their days ("Gina said on 1 May 2023") favour neither.
    march = Passage("I finished a new painting of the harbour at dawn.", speaker="Gina", timestamp="2023-05-01T10:00")
    may = Passage("I finished a new painting of my grandmother's garden.", speaker="Gina", timestamp="2023-05-21T10:00")
    for question, painting in (("What painting did Gina finish the week before 22 May 2023?", "garden"),
                               ("What painting did Gina finish the week before 2 May 2023?", "harbour")):
        for order in ([march, may], [may, march]):
            a = responder.answer(question, order)
            assert painting in max(a.picks, key=lambda p: p.score).sentence, (question, a.text)
    undated = responder.rank("What painting did Gina finish?", [march, may])
    assert undated is not None and undated.timely is None
    # The day ranks a message first; it is no evidence that the message answers.
    ranked = responder.rank("What painting did Gina finish the week before 22 May 2023?", [march, may])
    assert ranked is not None and ranked.timely == [0.0, responder.config.w_when]
    assert ranked.best_own == pytest.approx(ranked.best_score - responder.config.w_when)
    unrelated = Passage("The weather was lovely for a walk by the sea.", speaker="Gina", timestamp="2023-05-21T10:00")
    assert responder.answer("What painting did Gina finish on 21 May, 2023?", [unrelated]).text == NO_ANSWER


def test_a_number_of_the_question_may_be_in_the_title_the_answer_speaks_within(responder: ExtractiveResponder) -> None:
    season = Passage("The club reached the cup semi-final. Welsh goalkeeper Owain Pryce joined Harrow Rovers as their "
                     "second keeper in March.", "Harrow Rovers in 2014")
    keeper = Passage("Owain Pryce is a Welsh goalkeeper. He started his career at Cardiff Corinthians.", "Owain Pryce")
    question = "Where did the Welsh goalkeeper who joined Harrow Rovers in March, 2014 start his career?"
    a = responder.answer(question, [season, keeper])
    assert "Cardiff Corinthians" in a.text and "number_missing" not in a.reasons, (a.reasons, a.text)
    # A year that neither the answer nor its sources' titles say is still missing.
    other = responder.answer(question.replace("2014", "2016"), [season, keeper])
    assert other.text == NO_ANSWER and "number_missing" in other.reasons, (other.reasons, other.text)
