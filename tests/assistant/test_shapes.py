"""Question shapes (one fact, a comparison, a choice, yes/no, a shared fact) and the values they compare."""

from __future__ import annotations

from datetime import date

import pytest

from assistant.chat.shapes import (
    Shape,
    Value,
    about,
    asks_for_several,
    first_date,
    mentions,
    qualifier,
    quantities,
    shape,
)


def test_born_first_compares_dates_and_the_earliest_wins() -> None:
    s = shape("Who was born first, Arthur Conan Doyle or Penelope Lively?")
    assert (s.kind, s.entities, s.wins, s.value) == ("comparison", ("Arthur Conan Doyle", "Penelope Lively"), "min", "date")
    assert "born first" in s.attribute


def test_more_members_compares_numbers_and_the_largest_wins() -> None:
    s = shape("Which band has more members, Letters to Cleo or Screaming Trees?")
    # "to" joins the first name: it is one band, not "Cleo".
    assert (s.kind, s.entities, s.wins, s.value) == ("comparison", ("Letters to Cleo", "Screaming Trees"), "max", "number")


def test_younger_compares_dates_and_the_latest_wins() -> None:
    s = shape("Which tennis player is younger, John Newcombe or Květa Peschke?")
    assert (s.kind, s.entities, s.wins, s.value) == ("comparison", ("John Newcombe", "Květa Peschke"), "max", "date")


def test_fewer_compares_numbers_and_the_smallest_wins() -> None:
    s = shape("Which city has fewer people, Truro or Bodmin?")
    assert (s.kind, s.entities, s.wins, s.value) == ("comparison", ("Truro", "Bodmin"), "min", "number")


def test_a_comparison_written_with_and_after_a_comma() -> None:
    s = shape("Which genus has more species, Bactris and Epigaea?")
    assert (s.kind, s.entities, s.wins, s.value) == ("comparison", ("Bactris", "Epigaea"), "max", "number")


def test_two_subjects_asked_what_they_are_is_a_pair() -> None:
    s = shape("Woman's Era and Naj are what kind of magazines?")
    assert (s.kind, s.entities) == ("pair", ("Woman's Era", "Naj"))
    # Lower-case subjects are not names: one fact is asked for.
    assert shape("Bread and butter are what?").kind == "single"


def test_a_choice_without_a_comparative_word() -> None:
    s = shape("Which is a Macedonian weekly, Hänt Extra or Tea Moderna?")
    assert (s.kind, s.entities, s.wins, s.value) == ("choice", ("Hänt Extra", "Tea Moderna"), None, None)
    assert "Macedonian weekly" in s.attribute


def test_a_choice_ends_its_second_entity_at_the_comma() -> None:
    s = shape("Which canal, Miami Canal or Dundee Canal, also supplies hydro-power?")
    assert (s.kind, s.entities) == ("choice", ("Miami Canal", "Dundee Canal"))
    assert "supplies hydro-power" in s.attribute


def test_are_both_is_yes_no() -> None:
    s = shape("Are Local H and For Against both from the United States?")
    assert (s.kind, s.entities) == ("yesno", ("Local H", "For Against"))
    assert "United States" in s.attribute


def test_same_nationality_is_yes_no() -> None:
    s = shape("Were Scott Derrickson and Ed Wood of the same nationality?")
    assert (s.kind, s.entities) == ("yesno", ("Scott Derrickson", "Ed Wood"))
    assert "same nationality" in s.attribute


def test_a_question_opening_with_both_is_yes_no() -> None:
    s = shape("Both Sorbaria and Goldenrod are a genus of flowering plants?")
    assert (s.kind, s.entities) == ("yesno", ("Sorbaria", "Goldenrod"))
    assert "genus of flowering plants" in s.attribute


def test_both_with_a_question_word_asks_what_they_share() -> None:
    s = shape("Jaroslav Seifert and John McGahern were both part of what shared profession?")
    assert (s.kind, s.entities) == ("pair", ("Jaroslav Seifert", "John McGahern"))


def test_in_common_asks_what_they_share() -> None:
    s = shape("What do Ada Quill and Bram Tolly have in common?")
    assert (s.kind, s.entities) == ("pair", ("Ada Quill", "Bram Tolly"))


@pytest.mark.parametrize(
    "question",
    [
        "How many hearts does an octopus have?",
        "Where was the author of The Glass Orchard born?",
        "When did Caroline go to the support group?",
        # "or" between lower-case words names no two things to compare.
        "Which came first, the chicken or the egg?",
        "Is tea or coffee better?",
    ],
)
def test_other_questions_are_single(question: str) -> None:
    assert shape(question) == Shape("single")


def test_a_missing_question_mark_does_not_change_the_shape() -> None:
    assert shape("Who was born first, Ada Quill or Bram Tolly") == shape("Who was born first, Ada Quill or Bram Tolly?")


def test_first_date_reads_month_day_year() -> None:
    found = first_date("He was born April 23, 1928 in Ohio.")
    assert found == Value("April 23, 1928", float(date(1928, 4, 23).toordinal()))


def test_first_date_reads_day_month_year() -> None:
    found = first_date("Ada Quill (born 23 April 1928) was a poet.")
    assert found is not None and found.text == "23 April 1928" and found.key == date(1928, 4, 23).toordinal()


def test_first_date_reads_month_year_and_year_only() -> None:
    month = first_date("It opened in March 1901.")
    year = first_date("The band formed in 1965 in Seattle.")
    assert month is not None and month.text == "March 1901" and month.key == date(1901, 3, 1).toordinal()
    assert year is not None and year.text == "1965" and year.key == date(1965, 1, 1).toordinal()


def test_first_date_orders_by_the_calendar() -> None:
    # The keys order dates as written at different precision.
    early, late = first_date("born 9 June 1888"), first_date("born in 1901")
    assert early is not None and late is not None and early.key < late.key


def test_first_date_takes_the_first_of_two() -> None:
    found = first_date("She was born on 4 May 1891 and died on 2 June 1950.")
    assert found is not None and found.text == "4 May 1891"


def test_first_date_of_a_life_span_is_the_birth_year() -> None:
    found = first_date("Bram Tolly (1888 – 3 May 1950) was a painter.")
    assert found is not None and found.text == "1888"


def test_first_date_none_without_a_date() -> None:
    assert first_date("No date at all, only 42 cats.") is None
    # A day that does not exist is not a date; only its year is read.
    found = first_date("born February 30, 1990")
    assert found is not None and found.text == "1990"


def test_quantities_read_scale_words() -> None:
    assert quantities("The city has 3.5 million people.") == [Value("3.5 million", 3.5e6)]
    assert quantities("about 12 thousand visitors") == [Value("12 thousand", 12_000.0)]


def test_quantities_read_thousands_separators() -> None:
    assert quantities("The club has 1,200 members.") == [Value("1,200", 1200.0)]


def test_a_year_alone_is_not_a_quantity() -> None:
    assert quantities("It was founded in 1965.") == []
    assert quantities("The band had 4 members in 1990.") == [Value("4", 4.0)]


def test_a_year_with_a_scale_word_is_a_quantity() -> None:
    assert quantities("1999 million years") == [Value("1999 million", 1999e6)]


def test_mentions_needs_every_term_of_the_entity() -> None:
    assert mentions("Arthur Conan Doyle was a writer.", "Arthur Conan Doyle")
    assert mentions("The Screaming Trees were a band.", "Screaming Trees")
    assert not mentions("Arthur was a writer.", "Arthur Conan Doyle")
    assert not mentions("Anything at all.", "")


def test_about_matches_a_title_within_the_entity_or_the_reverse() -> None:
    assert about("Shirley Temple", "Shirley Temple Black")
    assert about("The Glass Orchard", "Glass Orchard")
    assert not about("Shirley Temple", "Ed Wood")
    assert not about(None, "Ed Wood")
    assert not about("", "Ed Wood")


@pytest.mark.parametrize(
    ("question", "entities", "wins", "value"),
    [("Is the building located at 200 West Street taller than the one at 888 7th Avenue?",
      ("200 West Street", "888 7th Avenue"), "max", "number"),
     ("Was Ada Quill born earlier than Bram Tolly?", ("Ada Quill", "Bram Tolly"), "min", "date"),
     ("Is Truro more populous than Bodmin?", ("Truro", "Bodmin"), "max", "number")],
)
def test_a_comparison_asked_as_yes_no(question: str, entities: tuple[str, str], wins: str, value: str) -> None:
    s = shape(question)
    assert (s.kind, s.entities, s.wins, s.value, s.polar) == ("comparison", entities, wins, value, True)


def test_than_without_two_names_is_a_single_fact() -> None:
    assert shape("Is it true that cats are nicer than dogs?").kind == "single"


def test_a_quantity_keeps_the_words_that_name_its_unit() -> None:
    [area] = quantities("The Sahara covers about nine million square kilometres of northern Africa.")
    [thick] = quantities("An ice sheet almost two kilometres thick covers it.")
    [tall] = quantities("The Eiffel Tower is 330 metres tall.")
    [other] = quantities("The Statue of Liberty is 93 metres from the ground to the torch.")
    assert area.key == 9e6 and "square kilometr" in area.unit and "kilometr" not in area.unit
    assert not area.comparable(thick)  # an area is not a thickness
    assert tall.comparable(other) and other.comparable(tall)
    [bare] = quantities("Babies have around 270, and some fuse.")
    assert bare.unit == frozenset() and bare.comparable(area)  # nothing says what it counts


@pytest.mark.parametrize(
    ("question", "kind", "entities"),
    [
        ("Are penguins and cheetahs both birds?", "yesno", ("penguins", "cheetahs")),
        ("Is the cheetah faster than a blue whale?", "comparison", ("cheetah", "blue whale")),
        ("Is a tortoise slower than the hare?", "comparison", ("tortoise", "hare")),
        # Not a pair: no "both" to end the second subject, or no short noun phrase on a side.
        ("Are there cats and dogs in the house?", "single", ()),
        ("Is the cheetah faster than most animals living in africa today?", "single", ()),
    ],
)
def test_common_nouns_pair_up_in_the_both_and_than_frames(question: str, kind: str, entities: tuple[str, ...]) -> None:
    found = shape(question)
    assert (found.kind, found.entities) == (kind, entities)


@pytest.mark.parametrize(
    ("question", "entities", "wins"),
    [
        ("Was the printing press invented before the World Wide Web?", ("printing press", "World Wide Web"), "min"),
        ("Was Python released after the World Wide Web?", ("Python", "World Wide Web"), "max"),
        ("Did the Normans arrive before the Vikings?", ("Normans", "Vikings"), "min"),
    ],
)
def test_before_and_after_two_named_things_compare_their_dates(question: str, entities: tuple[str, str], wins: str) -> None:
    found = shape(question)
    assert (found.kind, found.entities, found.wins, found.value, found.polar) == ("comparison", entities, wins, "date", True)


@pytest.mark.parametrize(
    "question",
    ["Was Ada Quill born before 1900?", "Was Shirley Temple born before May 1930?", "Did Maria go to the gym before work?",
     "Was the film released before Shirley Temple retired?", "Did Maria go to the gym before the meeting?"],
)
def test_before_a_date_a_common_word_or_an_event_compares_no_two_things(question: str) -> None:
    assert shape(question).kind == "single"


def test_a_quantity_is_shown_with_its_unit_of_measure_only() -> None:
    assert [v.shown for v in quantities("It is 330 metres tall and reaches 100 km/h, 5% of the time.")] == [
        "330 metres", "100 km/h", "5%"]
    assert quantities("about nine million square kilometres")[0].shown == "nine million square kilometres"
    # What follows is no measure: an adjective or what is counted stays out of the shown value.
    assert [v.shown for v in quantities("It has two small moons and 14 locations.")] == ["two", "14"]


def test_a_minus_sign_of_its_own_makes_a_number_negative_a_dash_between_two_does_not() -> None:
    [cold] = quantities("The lowest temperature recorded there was −89.2 °C.")
    assert cold.key == -89.2 and cold.shown == "−89.2 °C"
    assert quantities("It can fall to -40 degrees.")[0].key == -40
    assert [v.key for v in quantities("The tour had 5-10 stops.")] == [5, 10]


@pytest.mark.parametrize(
    ("question", "several"),
    [("What activities does Melanie partake in?", True), ("Which cities has Jon visited?", True),
     ("What kinds of books does Caroline read?", True), ("What has Maria done to feel closer to her faith?", True),
     ("Where has Melanie camped?", True), ("What LGBTQ+ events has Caroline participated in?", True),
     ("What is Caroline's identity?", False), ("When did Melanie paint a sunrise?", False),
     ("What does Melanie do to destress?", False), ("Who was born first, Ada Lovelace or Grace Hopper?", False),
     ("What address does Tim have?", False), ("How many hearts does an octopus have?", False)],
)
def test_a_question_after_several_things_has_a_plural_head_or_an_accumulated_past(question: str, several: bool) -> None:
    assert asks_for_several(question) is several


@pytest.mark.parametrize(
    ("question", "speaker", "rest"),
    [("What activities has Priya done with her kids?", "Priya", "with her kids"),
     ("Which cities has Jon visited?", "Jon", ""), ("What do Melanie's kids like?", "Melanie", "like"),
     ("What activities has Priya done?", "Tomás", "")],
)
def test_the_qualifier_is_what_follows_the_speaker_and_their_verb(question: str, speaker: str, rest: str) -> None:
    assert qualifier(question, speaker) == rest
