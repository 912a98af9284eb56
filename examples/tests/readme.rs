//! The README's "Writing a game" shows excerpts of the counter example: each must still be in
//! the example's code, so that the walkthrough cannot drift from what runs.

/// The files the walkthrough quotes, relative to this crate.
const QUOTED: [&str; 4] = ["src/counter.rs", "counter.rs", "counter_client.rs", "pages/counter/index.html"];

/// A line that stands for code left out of an excerpt.
const ELISION: &str = "// ...";

/// The fenced code blocks of `markdown`'s section `heading`, as (language, text).
fn code_blocks<'a>(markdown: &'a str, heading: &str) -> Vec<(&'a str, Vec<&'a str>)> {
    let start = markdown.find(heading).unwrap_or_else(|| panic!("the README has no {heading:?}"));
    let section = &markdown[start + heading.len()..];
    let section = section.find("\n## ").map_or(section, |end| &section[..end]);
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(language) = line.strip_prefix("```") {
            blocks.push((language, lines.by_ref().take_while(|l| !l.starts_with("```")).collect()));
        }
    }
    blocks
}

/// The non-blank lines of `text`, trimmed: an excerpt may be indented differently.
fn significant<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    lines.into_iter().map(str::trim).filter(|l| !l.is_empty()).collect()
}

#[test]
fn every_rust_and_js_excerpt_in_writing_a_game_is_in_the_counter_example() {
    let readme = include_str!("../../README.md");
    let dir = env!("CARGO_MANIFEST_DIR");
    let files: Vec<(&str, String)> = QUOTED
        .iter()
        .map(|f| (*f, std::fs::read_to_string(format!("{dir}/{f}")).expect("the quoted file reads")))
        .collect();
    let mut quoted_from = std::collections::BTreeSet::new();
    let blocks = code_blocks(readme, "## Writing a game");
    for (language, block) in &blocks {
        if !(language.starts_with("rust") || *language == "js") {
            continue;
        }
        for excerpt in block.split(|l| l.trim() == ELISION) {
            let excerpt = significant(excerpt.iter().copied());
            if excerpt.is_empty() {
                continue;
            }
            let found = files.iter().find(|(_, text)| {
                significant(text.lines()).windows(excerpt.len()).any(|window| window == excerpt.as_slice())
            });
            match found {
                Some((file, _)) => quoted_from.insert(*file),
                None => {
                    panic!("this excerpt of the README is in none of {QUOTED:?}:\n{}", excerpt.join("\n"))
                }
            };
        }
    }
    assert_eq!(quoted_from, QUOTED.into_iter().collect(), "the walkthrough quotes each file");
}
